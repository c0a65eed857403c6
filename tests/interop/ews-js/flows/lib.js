// Shared set-up for the flows: an ExchangeService for the deployment's demo user, found the way
// an application finds it (AutodiscoverUrl by e-mail address), and small helpers.
//
// Environment (set by tests/interop/test_ews_js.py): TANDEM_EMAIL, TANDEM_PASSWORD,
// TANDEM_EWS_URL (what `tandem status` publishes), NODE_EXTRA_CA_CERTS (the deployment's CA). The flows run inside a network namespace where the
// domain's names resolve to the deployment, listening on 443 as Exchange does.
'use strict';
const ews = require('ews-javascript-api');

const email = process.env.TANDEM_EMAIL;
const password = process.env.TANDEM_PASSWORD;
if (!email || !password) {
  throw new Error('TANDEM_EMAIL and TANDEM_PASSWORD must be set (run through tests/interop/test_ews_js.py)');
}
const domain = email.split('@')[1];

/** An ExchangeService with its URL found by Autodiscover from the e-mail address. */
async function discovered() {
  const svc = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
  svc.Credentials = new ews.WebCredentials(email, password);
  const redirections = [];
  await svc.AutodiscoverUrl(email, (url) => {
    redirections.push(url);
    return url.startsWith('https://');
  });
  return { svc, redirections };
}

/** An ExchangeService at the deployment's EWS URL (TANDEM_EWS_URL), so that each flow proves its
 * own behaviour and not Autodiscover's (autodiscover.test.js proves that). */
async function service() {
  const svc = new ews.ExchangeService(ews.ExchangeVersion.Exchange2013);
  svc.Credentials = new ews.WebCredentials(email, password);
  svc.Url = new ews.Uri(process.env.TANDEM_EWS_URL);
  return { svc };
}

/** An AutodiscoverService signed in as the demo user, following https redirects only. */
function autodiscoverService() {
  const ad = new ews.AutodiscoverService(ews.ExchangeVersion.Exchange2013);
  ad.Credentials = new ews.WebCredentials(email, password);
  ad.RedirectionUrlValidationCallback = (url) => url.startsWith('https://');
  return ad;
}

/** A unique subject, so flows never see each other's items. */
function unique(prefix) {
  return `${prefix} ${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
}

module.exports = { ews, email, password, domain, discovered, service, unique, autodiscoverService };
