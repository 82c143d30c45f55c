//! The receive path: loading and attaching the XDP program, reading its ring
//! buffer and counters, and the fallback packet socket used without XDP.

pub mod counters;
pub mod fallback;
pub mod key;
pub mod mode;
pub mod program;
pub mod receive;
