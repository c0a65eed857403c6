// (a) AutodiscoverUrl(email): the Managed API's unauthenticated GET of autodiscover.xml must see
// X-SOAP-Enabled before it uses SOAP Autodiscover (GetUserSettings at autodiscover.svc).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ews, email, discovered, autodiscoverService } = require('./lib');

test('AutodiscoverUrl by e-mail address finds the EWS URL', async () => {
  const { svc } = await discovered();
  const url = svc.Url.ToString();
  // The deployment's published EWS URL (GetUserSettings ExternalEwsUrl), as `tandem status` prints it.
  assert.equal(url.toLowerCase(), process.env.TANDEM_EWS_URL.toLowerCase());
  // The URL found works: the Inbox binds.
  const inbox = await ews.Folder.Bind(svc, ews.WellKnownFolderName.Inbox);
  assert.equal(inbox.DisplayName, 'Inbox');
  console.log(`autodiscovered ${url} for ${email}`);
});

test('GetUserSettings through the AutodiscoverService', async () => {
  const ad = autodiscoverService();
  const resp = await ad.GetUserSettings(email, [ews.UserSettingName.UserDisplayName, ews.UserSettingName.ExternalEwsUrl]);
  assert.equal(resp.ErrorCode, ews.AutodiscoverErrorCode.NoError);
  assert.equal(resp.Settings.get(ews.UserSettingName.UserDisplayName), 'Alice Anderson');
  assert.match(resp.Settings.get(ews.UserSettingName.ExternalEwsUrl), /\/EWS\/Exchange\.asmx$/i);
});
