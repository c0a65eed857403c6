// WebClientUrls as the EWS Managed API reads them: a WebClientUrlCollectionSetting with the URL
// and its sign-in methods when the administrator published an OWA URL (TANDEM_OWA_URL), and a
// SettingIsNotAvailable error for it while none is published (TANDEM_OWA_URL empty).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ews, email, autodiscoverService } = require('./lib');

test('InternalWebClientUrls through the AutodiscoverService', async () => {
  const ad = autodiscoverService();
  const resp = await ad.GetUserSettings(email, [ews.UserSettingName.InternalWebClientUrls, ews.UserSettingName.UserDisplayName]);
  assert.equal(resp.ErrorCode, ews.AutodiscoverErrorCode.NoError);
  assert.equal(resp.Settings.get(ews.UserSettingName.UserDisplayName), 'Alice Anderson');
  const expected = process.env.TANDEM_OWA_URL;
  if (expected) {
    const urls = resp.Settings.get(ews.UserSettingName.InternalWebClientUrls).Urls;
    assert.equal(urls.length, 1);
    assert.equal(urls[0].Url, expected);
    assert.match(urls[0].AuthenticationMethods, /Fba/);
    console.log(`web client at ${urls[0].Url} (${urls[0].AuthenticationMethods})`);
  } else {
    assert.equal(resp.Settings.get(ews.UserSettingName.InternalWebClientUrls), undefined);
    const errors = resp.UserSettingErrors.map((e) => [e.SettingName, e.ErrorCode]);
    assert.deepEqual(errors, [['InternalWebClientUrls', ews.AutodiscoverErrorCode.SettingIsNotAvailable]]);
    console.log('no web client published');
  }
});
