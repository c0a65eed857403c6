// (d) A streaming subscription delivers events: the library cuts the chunked GetStreamingEvents
// response on the literal `<Envelope` … `</Envelope>`, as Exchange frames each batch.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ews, email, service, unique } = require('./lib');

test('a streaming subscription sees new mail', async () => {
  const { svc } = await service();
  const sub = await svc.SubscribeToStreamingNotifications(
    [new ews.FolderId(ews.WellKnownFolderName.Inbox)], ews.EventType.NewMail, ews.EventType.Created);
  const conn = new ews.StreamingSubscriptionConnection(svc, 1);
  conn.AddSubscription(sub);
  const subject = unique('Streamed');
  const seen = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no notification within 20 s')), 20000);
    conn.OnNotificationEvent.push((_sender, args) => {
      const kinds = args.Events.map((e) => ews.EventType[e.EventType]);
      clearTimeout(timer);
      resolve(kinds);
    });
    conn.OnSubscriptionError.push((_sender, args) => reject(args.Exception || new Error('subscription error')));
  });
  conn.Open();
  await new Promise((r) => setTimeout(r, 1000));
  const msg = new ews.EmailMessage(svc);
  msg.Subject = subject;
  msg.Body = new ews.MessageBody(ews.BodyType.Text, 'to myself');
  msg.ToRecipients.Add(email);
  await msg.Send();
  const kinds = await seen;
  try { conn.Close(); } catch (_) { /* closing an already-ended stream is fine */ }
  assert.ok(kinds.includes('NewMail') || kinds.includes('Created'), `events: ${kinds}`);
  console.log(`events: ${kinds.join(',')}`);
});
