//! Types and pure code shared by the carpd-xdp XDP program (`carp-ebpf`) and
//! the daemon (`carp-daemon`).
//!
//! Everything here is `no_std`, allocation-free and verifier-friendly: the XDP
//! program calls [`inspect::inspect`] on the packet, and the host unit tests as
//! well as the daemon's fallback receive path call the very same function on
//! byte slices. Types that cross the kernel/user boundary are `#[repr(C)]`,
//! integer-only, with explicit padding and compile-time size checks; with the
//! `user` feature they implement `aya::Pod`.
#![no_std]
#![deny(missing_docs)]

pub mod access;
pub mod checksum;
pub mod constants;
pub mod craft;
pub mod event;
pub mod header;
pub mod hmac;
pub mod inspect;
pub mod maps;
pub mod rate;
pub mod reason;
pub mod sha1;
