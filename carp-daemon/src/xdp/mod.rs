//! The receive path: loading and attaching the XDP program, reading its ring
//! buffer and counters, and the fallback packet socket used without XDP.

pub mod mode;
