//! The `sohoa` binary's command line: it wires `scanner-drivers`, `pipeline` and `archive-api` together.
#![deny(missing_docs)]

pub mod cli;
pub mod settings;
