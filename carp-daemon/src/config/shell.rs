//! The subset of POSIX shell that UCARP's configuration files are written in
//! (`/etc/default/ucarp`, per-VIP files sourced by init scripts): comments,
//! `NAME=value` and `export NAME=value` lines, values quoted with `'`, `"` or
//! backslashes, and the word splitting of a value such as `OPTIONS="-z -P"`.
//!
//! Nothing is evaluated: a `$` or a backquote outside single quotes is an
//! error naming the line, as is any line that is not an assignment. The
//! importer would rather refuse than guess what a script computes.

/// One `NAME=value` assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// 1-based line of the name.
    pub line: usize,
    /// The variable name.
    pub name: String,
    /// The value with quotes removed.
    pub value: String,
}

/// Why shell text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// A line that is not an assignment (a command, a function, `if`...).
    #[error("line {line}: not a NAME=value assignment: {text:?}")]
    NotAssignment {
        /// 1-based line.
        line: usize,
        /// The line, trimmed and shortened.
        text: String,
    },
    /// A quote that is never closed.
    #[error("line {line}: unterminated {quote} quote")]
    Unterminated {
        /// 1-based line where the quoted text starts.
        line: usize,
        /// `'` or `"`.
        quote: char,
    },
    /// `$...` or a backquote: the value would be computed by the shell.
    #[error("line {line}: {name} uses shell expansion ({what}), which is not evaluated; write the value itself")]
    Expansion {
        /// 1-based line.
        line: usize,
        /// The variable being assigned, or `OPTIONS word`.
        name: String,
        /// `$` or `` ` ``.
        what: char,
    },
}

/// A cursor over the text, counting lines.
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.next();
        }
    }

    fn rest_of_line(&mut self) -> String {
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            text.push(c);
            self.next();
        }
        text
    }

    /// One shell word: quoted parts concatenated, up to unquoted white space,
    /// `;` or end of line. `name` is used in expansion errors.
    fn word(&mut self, name: &str) -> Result<String, ShellError> {
        let mut out = String::new();
        let expansion = |line, what| ShellError::Expansion {
            line,
            name: name.to_owned(),
            what,
        };
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' => break,
                '\'' => {
                    let start = self.line;
                    self.next();
                    loop {
                        match self.next() {
                            Some('\'') => break,
                            Some(c) => out.push(c),
                            None => {
                                return Err(ShellError::Unterminated {
                                    line: start,
                                    quote: '\'',
                                })
                            }
                        }
                    }
                }
                '"' => {
                    let start = self.line;
                    self.next();
                    loop {
                        match self.next() {
                            Some('"') => break,
                            Some('\\') => match self.next() {
                                Some('\n') => {}
                                Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                                Some(c) => {
                                    out.push('\\');
                                    out.push(c);
                                }
                                None => {
                                    return Err(ShellError::Unterminated {
                                        line: start,
                                        quote: '"',
                                    })
                                }
                            },
                            Some(c @ ('$' | '`')) => return Err(expansion(self.line, c)),
                            Some(c) => out.push(c),
                            None => {
                                return Err(ShellError::Unterminated {
                                    line: start,
                                    quote: '"',
                                })
                            }
                        }
                    }
                }
                '\\' => {
                    self.next();
                    match self.next() {
                        Some('\n') | None => {}
                        Some(c) => out.push(c),
                    }
                }
                '$' | '`' => return Err(expansion(self.line, c)),
                c => {
                    out.push(c);
                    self.next();
                }
            }
        }
        Ok(out)
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The assignments of a file, in order (a later one of the same name wins,
/// as when the shell sources the file).
pub fn assignments(text: &str) -> Result<Vec<Assignment>, ShellError> {
    let mut cur = Cursor {
        chars: text.chars().peekable(),
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        // Separators between statements: blanks, newlines, `;`.
        while matches!(cur.peek(), Some(' ' | '\t' | '\n' | '\r' | ';')) {
            cur.next();
        }
        match cur.peek() {
            None => return Ok(out),
            Some('#') => {
                cur.rest_of_line();
                continue;
            }
            Some(_) => {}
        }
        let line = cur.line;
        let mut head = String::new();
        while let Some(c) = cur.peek() {
            if c == '=' || c.is_whitespace() || c == ';' {
                break;
            }
            head.push(c);
            cur.next();
        }
        if head == "export" && matches!(cur.peek(), Some(' ' | '\t')) {
            cur.skip_blanks();
            head.clear();
            while let Some(c) = cur.peek() {
                if c == '=' || c.is_whitespace() || c == ';' {
                    break;
                }
                head.push(c);
                cur.next();
            }
        }
        if cur.peek() != Some('=') || !is_name(&head) {
            let rest = cur.rest_of_line();
            let text: String = format!("{head}{rest}").trim().chars().take(60).collect();
            return Err(ShellError::NotAssignment { line, text });
        }
        cur.next();
        let value = cur.word(&head)?;
        cur.skip_blanks();
        match cur.peek() {
            None | Some('\n' | '\r' | ';') => {}
            Some('#') => {
                cur.rest_of_line();
            }
            // `A=1 command`: a command run with A in its environment.
            Some(_) => {
                let rest = cur.rest_of_line();
                let text: String = format!("{head}={value} {rest}")
                    .trim()
                    .chars()
                    .take(60)
                    .collect();
                return Err(ShellError::NotAssignment { line, text });
            }
        }
        out.push(Assignment {
            line,
            name: head,
            value: value.trim_end_matches('\r').to_owned(),
        });
    }
}

/// Splits a value into words as the shell splits `$OPTIONS` in `ucarp
/// $OPTIONS`, honouring quotes inside it; `line` and `name` locate errors.
pub fn words(value: &str, line: usize, name: &str) -> Result<Vec<String>, ShellError> {
    let mut cur = Cursor {
        chars: value.chars().peekable(),
        line,
    };
    let mut out = Vec::new();
    loop {
        while matches!(cur.peek(), Some(c) if c.is_whitespace()) {
            cur.next();
        }
        if cur.peek().is_none() {
            return Ok(out);
        }
        if cur.peek() == Some(';') {
            return Err(ShellError::NotAssignment {
                line,
                text: format!("{name}={value}"),
            });
        }
        out.push(cur.word(name)?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(usize, String, String)> {
        assignments(text)
            .unwrap()
            .into_iter()
            .map(|a| (a.line, a.name, a.value))
            .collect()
    }

    #[test]
    fn assignments_with_quotes_comments_and_export() {
        let text = "# ucarp\n\nINTERFACE=eth0:carp0\nexport PASSWORD='s3cr\"t'  # note\n\
                    OPTIONS=\"-z -P  -k 100\"; UPSCRIPT=/etc/up\\ here.sh\nEMPTY=\n";
        assert_eq!(
            pairs(text),
            vec![
                (3, "INTERFACE".into(), "eth0:carp0".into()),
                (4, "PASSWORD".into(), "s3cr\"t".into()),
                (5, "OPTIONS".into(), "-z -P  -k 100".into()),
                (5, "UPSCRIPT".into(), "/etc/up here.sh".into()),
                (6, "EMPTY".into(), String::new()),
            ]
        );
    }

    #[test]
    fn commands_expansions_and_open_quotes_are_refused() {
        assert_eq!(
            assignments("A=1\nif true; then\n").unwrap_err().to_string(),
            "line 2: not a NAME=value assignment: \"if true; then\""
        );
        assert_eq!(
            assignments("A=1 ucarp -i eth0\n").unwrap_err().to_string(),
            "line 1: not a NAME=value assignment: \"A=1 ucarp -i eth0\""
        );
        assert_eq!(
            assignments("\nPASSWORD=\"$(cat /etc/pw)\"\n")
                .unwrap_err()
                .to_string(),
            "line 2: PASSWORD uses shell expansion ($), which is not evaluated; write the value itself"
        );
        assert_eq!(
            assignments("A='x\n").unwrap_err(),
            ShellError::Unterminated {
                line: 1,
                quote: '\''
            }
        );
        // Single quotes keep `$` literal.
        assert_eq!(pairs("P='a$b'")[0].2, "a$b");
    }

    #[test]
    fn words_split_like_the_shell() {
        assert_eq!(
            words("-z -P --upscript='/etc/a b.sh'  -k 100", 3, "OPTIONS").unwrap(),
            vec!["-z", "-P", "--upscript=/etc/a b.sh", "-k", "100"]
        );
        assert!(words("", 1, "OPTIONS").unwrap().is_empty());
        assert!(words("-p $PW", 1, "OPTIONS").is_err());
    }
}
