// (c) The properties Exchange always returns under the default property set (FirstClassProperties,
// i.e. BaseShape AllProperties), read through the library's typed getters.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ews, email, service, unique } = require('./lib');

test('a calendar item carries Exchange\'s defaults', async () => {
  const { svc } = await service();
  const appt = new ews.Appointment(svc);
  appt.Subject = unique('Defaults');
  appt.Start = new ews.DateTime(Date.UTC(2026, 11, 4, 9, 0, 0));
  appt.End = new ews.DateTime(Date.UTC(2026, 11, 4, 9, 30, 0));
  await appt.Save(ews.WellKnownFolderName.Calendar, ews.SendInvitationsMode.SendToNone);
  const a = await ews.Appointment.Bind(svc, appt.Id);
  assert.equal(a.IsAllDayEvent, false);
  assert.equal(a.LegacyFreeBusyStatus, ews.LegacyFreeBusyStatus.Busy);
  assert.equal(a.Organizer.Address.toLowerCase(), email);
  assert.equal(a.IsMeeting, false);
  assert.equal(a.IsRecurring, false);
  assert.equal(a.IsCancelled, false);
  assert.equal(a.AppointmentType, ews.AppointmentType.Single);
  assert.equal(a.MyResponseType, ews.MeetingResponseType.Organizer);
  assert.equal(a.Duration.TotalMinutes, 30);
  assert.ok(a.TimeZone, 'TimeZone');
  assert.ok(a.StartTimeZone, 'StartTimeZone');
  assert.equal(a.Sensitivity, ews.Sensitivity.Normal);
  assert.equal(a.Importance, ews.Importance.Normal);
  assert.equal(a.IsReminderSet, true);
  assert.equal(a.ReminderMinutesBeforeStart, 15);
  assert.ok(a.DateTimeCreated, 'DateTimeCreated');
  assert.ok(a.ICalUid, 'UID');
});

test('a message carries Exchange\'s defaults', async () => {
  const { svc } = await service();
  const msg = new ews.EmailMessage(svc);
  msg.Subject = unique('Draft');
  msg.Body = new ews.MessageBody(ews.BodyType.Text, 'hello');
  msg.ToRecipients.Add('bob@' + email.split('@')[1]);
  await msg.Save(ews.WellKnownFolderName.Drafts);
  const m = await ews.EmailMessage.Bind(svc, msg.Id);
  assert.equal(m.IsRead, true);
  assert.equal(m.IsDraft, true);
  assert.equal(m.Importance, ews.Importance.Normal);
  assert.equal(m.Sensitivity, ews.Sensitivity.Normal);
  assert.ok(m.DateTimeCreated, 'DateTimeCreated');
  assert.ok(m.Size > 0, 'Size');
  assert.ok(m.ConversationId && m.ConversationId.UniqueId, 'ConversationId');
  assert.equal(m.ConversationTopic, m.Subject.replace(/^(re|fw|fwd):\s*/i, ''));
  assert.equal(m.DisplayTo, 'bob@' + email.split('@')[1]);
  assert.equal(m.IsReadReceiptRequested, false);
  assert.equal(m.Culture, 'en-US');
  assert.match(m.InternetMessageId, /^<[^@>]+@[^>]+>$/);
});

test('a contact carries Exchange\'s defaults', async () => {
  const { svc } = await service();
  const c = new ews.Contact(svc);
  c.GivenName = 'Dana';
  c.Surname = unique('Scully');
  await c.Save(ews.WellKnownFolderName.Contacts);
  const back = await ews.Contact.Bind(svc, c.Id);
  assert.equal(back.FileAs, `${c.Surname}, Dana`);
  assert.equal(back.CompleteName.GivenName, 'Dana');
  assert.equal(back.CompleteName.Surname, c.Surname);
  assert.equal(back.CompleteName.FullName, `Dana ${c.Surname}`);
  assert.equal(back.Sensitivity, ews.Sensitivity.Normal);
  assert.equal(back.Importance, ews.Importance.Normal);
  assert.ok(back.DateTimeCreated, 'DateTimeCreated');
  assert.ok(back.Size > 0, 'Size');
  assert.equal(back.ContactSource, ews.ContactSource.Store);
  assert.equal(back.HasPicture, false);
});

test('a task carries Exchange\'s defaults', async () => {
  const { svc } = await service();
  const t = new ews.Task(svc);
  t.Subject = unique('File the report');
  t.DueDate = new ews.DateTime(Date.UTC(2026, 11, 10, 17, 0, 0));
  await t.Save(ews.WellKnownFolderName.Tasks);
  const back = await ews.Task.Bind(svc, t.Id);
  assert.equal(back.Status, ews.TaskStatus.NotStarted);
  assert.equal(back.IsComplete, false);
  assert.equal(back.PercentComplete, 0);
  assert.equal(back.IsRecurring, false);
  assert.equal(back.IsTeamTask, false);
  assert.equal(back.ChangeCount, 1);
  assert.equal(back.Owner, 'Alice Anderson');
  assert.equal(back.DueDate.TotalMilliSeconds, Date.UTC(2026, 11, 10, 17, 0, 0));
  assert.equal(back.Sensitivity, ews.Sensitivity.Normal);

  // Completing it: Exchange derives PercentComplete and IsComplete from Status.
  back.Status = ews.TaskStatus.Completed;
  await back.Update(ews.ConflictResolutionMode.AlwaysOverwrite);
  const done = await ews.Task.Bind(svc, t.Id);
  assert.equal(done.Status, ews.TaskStatus.Completed);
  assert.equal(done.PercentComplete, 100);
  assert.equal(done.IsComplete, true);
});

test('folders answer with their counts and class', async () => {
  const { svc } = await service();
  const cal = await ews.CalendarFolder.Bind(svc, ews.WellKnownFolderName.Calendar);
  assert.equal(cal.DisplayName, 'Calendar');
  assert.ok(cal.TotalCount >= 1);
  const inbox = await ews.Folder.Bind(svc, ews.WellKnownFolderName.Inbox);
  assert.equal(inbox.FolderClass, 'IPF.Note');
  assert.equal(typeof inbox.UnreadCount, 'number');
  assert.equal(typeof inbox.ChildFolderCount, 'number');
  const rights = inbox.EffectiveRights;
  assert.ok(rights & ews.EffectiveRights.CreateContents, `EffectiveRights ${rights}`);
  assert.ok(rights & ews.EffectiveRights.Read, `EffectiveRights ${rights}`);
});
