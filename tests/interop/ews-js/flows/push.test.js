// (e) A push subscription: SubscribeToPushNotifications names a callback URL (a small node:http
// receiver in the same network namespace); the Mailbox POSTs SendNotification there with the
// subscription's events, and the receiver's SendNotificationResult (OK, then Unsubscribe) keeps
// and then ends it.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { ews, email, service, unique } = require('./lib');

const OK = (status) => '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
  + '<s:Body><SendNotificationResult xmlns="http://schemas.microsoft.com/exchange/services/2006/messages">'
  + `<SubscriptionStatus>${status}</SubscriptionStatus></SendNotificationResult></s:Body></s:Envelope>`;

test('a push subscription posts new mail to the callback', async () => {
  const bodies = [];
  let answer = 'OK';
  let notify = () => {};
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      res.end(OK(answer));
      notify();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/push`;
  try {
    const { svc } = await service();
    const sub = await svc.SubscribeToPushNotifications(
      [new ews.FolderId(ews.WellKnownFolderName.Inbox)], new ews.Uri(url), 1, null, ews.EventType.NewMail);
    assert.ok(sub.Id, 'a subscription id');
    const waitFor = (pred, ms) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing posted within ${ms} ms: ${bodies.length} bodies`)), ms);
      const check = () => { if (pred()) { clearTimeout(timer); resolve(); } };
      notify = check;
      check();
    });
    const subject = unique('Pushed');
    answer = 'Unsubscribe';
    const msg = new ews.EmailMessage(svc);
    msg.Subject = subject;
    msg.Body = new ews.MessageBody(ews.BodyType.Text, 'to myself');
    msg.ToRecipients.Add(email);
    await msg.Send();
    await waitFor(() => bodies.some((b) => b.includes('NewMailEvent')), 20000);
    const body = bodies.find((b) => b.includes('NewMailEvent'));
    assert.match(body, /<m:SendNotification>/);
    assert.ok(body.includes(`<t:SubscriptionId>${sub.Id}</t:SubscriptionId>`), body);
    // Answered Unsubscribe: nothing more arrives for new mail.
    const seen = bodies.length;
    const again = new ews.EmailMessage(svc);
    again.Subject = unique('Not pushed');
    again.Body = new ews.MessageBody(ews.BodyType.Text, 'to myself');
    again.ToRecipients.Add(email);
    await again.Send();
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(bodies.length, seen);
    console.log(`pushed ${seen} notification(s) to ${url}`);
  } finally {
    server.close();
  }
});
