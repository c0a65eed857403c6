//! Voicemail (the seed's "Exchange UM Voice Mail"), in the Front End as Exchange UM was beside
//! Skype for Business: a call nobody answers is recorded by the Front End's own user agent and
//! left in the callee's Inbox through EWS, as Exchange UM left it. This part writes the message
//! (`deposit`) and holds what the caller hears first (`greeting`: an uploaded greeting checked,
//! the generated default, the record tone); answering calls, message waiting and calling in are
//! issue 14's next steps (see docs/ARCHITECTURE.md).

pub mod deposit;
pub mod greeting;
