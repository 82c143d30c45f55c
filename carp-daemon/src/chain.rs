//! An error and its causes on one line, for logs, status and the exit
//! message: "msg: cause: cause". Error messages never quote their
//! `#[source]` (aya's convention), so the chain is printed here, once.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its sources, separated by ": ".
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open {path}")]
    struct Open {
        path: &'static str,
        #[source]
        io: std::io::Error,
    }

    #[test]
    fn each_cause_once() {
        let e = Open {
            path: "/x",
            io: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            Chain(&e).to_string(),
            "cannot open /x: No such file or directory (os error 2)"
        );
    }
}
