// (b) Appointments created and read back with Start/End intact: the library sends
// `…T10:00:00.000+00:00` (or another offset) and parses only what Exchange answers, UTC with Z.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ews, service, unique } = require('./lib');

const START = Date.UTC(2026, 11, 3, 10, 0, 0);
const END = Date.UTC(2026, 11, 3, 11, 30, 0);

test('an appointment keeps its Start and End through GetItem, FindItem and UpdateItem', async () => {
  const { svc } = await service();
  const subject = unique('Design review');
  const appt = new ews.Appointment(svc);
  appt.Subject = subject;
  appt.Start = new ews.DateTime(START);
  appt.End = new ews.DateTime(END);
  appt.Location = 'Room 4';
  await appt.Save(ews.WellKnownFolderName.Calendar, ews.SendInvitationsMode.SendToNone);

  const back = await ews.Appointment.Bind(svc, appt.Id);
  assert.equal(back.Subject, subject);
  assert.ok(back.Start, 'Start was dropped');
  assert.ok(back.End, 'End was dropped');
  assert.equal(back.Start.TotalMilliSeconds, START);
  assert.equal(back.End.TotalMilliSeconds, END);

  const view = new ews.CalendarView(new ews.DateTime(START - 3600e3), new ews.DateTime(END + 3600e3));
  const found = await svc.FindAppointments(ews.WellKnownFolderName.Calendar, view);
  const mine = found.Items.filter((a) => a.Subject === subject);
  assert.equal(mine.length, 1, 'CalendarView finds the appointment once');
  assert.equal(mine[0].Start.TotalMilliSeconds, START);
  assert.equal(mine[0].End.TotalMilliSeconds, END);

  // UpdateItem moves it an hour later; the new times come back the same way.
  back.Start = new ews.DateTime(START + 3600e3);
  back.End = new ews.DateTime(END + 3600e3);
  await back.Update(ews.ConflictResolutionMode.AlwaysOverwrite, ews.SendInvitationsOrCancellationsMode.SendToNone);
  const moved = await ews.Appointment.Bind(svc, appt.Id);
  assert.equal(moved.Start.TotalMilliSeconds, START + 3600e3);
  assert.equal(moved.End.TotalMilliSeconds, END + 3600e3);
  console.log(`start ${moved.Start.ToISOString()} end ${moved.End.ToISOString()}`);
});
