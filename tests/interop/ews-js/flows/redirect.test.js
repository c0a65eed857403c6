// Autodiscover redirects as the EWS Managed API follows them (RedirectAddress in SOAP
// GetUserSettings): a mail user of this organisation whose mailbox is in another one, and a mail
// user sent on to another address of the same domain.
//
// Environment (tests/interop/test_autodiscover_redirect.py): TANDEM_EMAIL/TANDEM_PASSWORD (Alice
// of the first organisation), TANDEM_MAIL_USER (carol of the first organisation, a mail user),
// TANDEM_MAIL_USER_LOGIN (her account name, the same in both organisations), TANDEM_REMOTE_EWS_URL
// (the second organisation's EWS URL), TANDEM_ALIAS (a mail user sent on to Alice).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ews, email, password, autodiscoverService } = require('./lib');

test('AutodiscoverUrl follows RedirectAddress to the organisation that has the mailbox', async () => {
  const svc = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
  svc.Credentials = new ews.WebCredentials(process.env.TANDEM_MAIL_USER_LOGIN, password);
  await svc.AutodiscoverUrl(process.env.TANDEM_MAIL_USER, (url) => url.startsWith('https://'));
  const url = svc.Url.ToString();
  assert.equal(url.toLowerCase(), process.env.TANDEM_REMOTE_EWS_URL.toLowerCase());
  // The mailbox found is the real one: its Inbox binds there.
  const inbox = await ews.Folder.Bind(svc, ews.WellKnownFolderName.Inbox);
  assert.equal(inbox.DisplayName, 'Inbox');
  console.log(`redirected ${process.env.TANDEM_MAIL_USER} to ${url}`);
});

test('GetUserSettings for a mail user of the same domain answers for its target', async () => {
  const ad = autodiscoverService();
  const resp = await ad.GetUserSettings(process.env.TANDEM_ALIAS, [
    ews.UserSettingName.UserDisplayName,
    ews.UserSettingName.AutoDiscoverSMTPAddress,
  ]);
  assert.equal(resp.ErrorCode, ews.AutodiscoverErrorCode.NoError);
  assert.equal(resp.Settings.get(ews.UserSettingName.UserDisplayName), 'Alice Anderson');
  assert.equal(resp.Settings.get(ews.UserSettingName.AutoDiscoverSMTPAddress).toLowerCase(), email.toLowerCase());
});
