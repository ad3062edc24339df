//! Python expressions as Authentik checks them when a property mapping is saved.
//!
//! `PropertyMappingSerializer.validate_expression` (authentik/core/api/property_mappings.py,
//! inherited by the scope and SAML mapping serializers) runs `BaseEvaluator.validate`
//! (authentik/lib/expression/evaluator.py, the same in every release from 2023.10 to 2026.2): the
//! expression is wrapped in a function and compiled, nothing runs and no name is looked up. A
//! `SyntaxError` (or `ValueError`) becomes 400 `{"expression": ["Expression Syntax Error:
//! <str(exc)>"]}`. `str(exc)` is CPython's `msg (filename, line N)`:
//! - the wrapper (`def handler(...):` then the expression indented, then `result = handler(...)`)
//!   puts the expression's first line on line 2, so every line number is one higher;
//! - the filename is the evaluator's: `None` for a new mapping (`PropertyMappingEvaluator(None)`),
//!   the mapping's saved name (the part after its last `/`) for an update.
//!
//! Which text is valid Python is decided by Ruff's parser (`ruff_python_parser`), not CPython; a
//! test compares the two on a corpus where `python3` is installed. The wording follows CPython
//! for the errors it words specially (an unclosed bracket, an unterminated string, indentation)
//! and is CPython's generic `invalid syntax` otherwise; the line is where the parser stopped.

use ruff_python_ast::Mod;
use ruff_python_ast::token::TokenKind;
use ruff_python_parser::{LexicalErrorType, Mode, ParseErrorType, ParseOptions, Parsed, parse_unchecked};
use ruff_text_size::Ranged;

/// `Err(message)` in Authentik's words when `expression` does not compile; `filename` is what
/// the evaluator passes to `compile()`.
pub fn validate(expression: &str, filename: &str) -> Result<(), String> {
    let wrapped = wrap(expression);
    let parsed = parse_unchecked(&wrapped, ParseOptions::from(Mode::Module));
    let line_of = |offset: usize| wrapped[..offset.min(wrapped.len())].matches('\n').count() + 1;
    let Some(error) = parsed.errors().first() else {
        // CPython's compiler (not its parser) refuses `from … import *` inside a function, and
        // the expression is always inside one.
        return match star_import(&parsed) {
            Some(offset) => Err(format!(
                "Expression Syntax Error: import * only allowed at module level ({}, line {})",
                basename(filename),
                line_of(offset)
            )),
            None => Ok(()),
        };
    };
    let at = usize::from(error.location.start());
    // CPython's tokenizer reports a bracket still open at the end before anything else.
    if let Some((bracket, offset, in_fstring)) = unclosed_bracket(&parsed, &wrapped) {
        let message = if in_fstring {
            "f-string: expecting '}'".to_string()
        } else {
            format!("'{bracket}' was never closed")
        };
        return Err(format!(
            "Expression Syntax Error: {message} ({}, line {})",
            basename(filename),
            line_of(offset)
        ));
    }
    let message = match &error.error {
        ParseErrorType::Lexical(LexicalErrorType::UnclosedStringError) => {
            let triple = wrapped[at..].trim_start_matches(|c: char| c.is_ascii_alphabetic());
            if triple.starts_with("\"\"\"") || triple.starts_with("'''") {
                format!(
                    "unterminated triple-quoted string literal (detected at line {})",
                    line_of(wrapped.len())
                )
            } else {
                format!("unterminated string literal (detected at line {})", line_of(at))
            }
        }
        ParseErrorType::UnexpectedIndentation => "unexpected indent".to_string(),
        ParseErrorType::Lexical(LexicalErrorType::IndentationError) => {
            "unindent does not match any outer indentation level".to_string()
        }
        _ => "invalid syntax".to_string(),
    };
    Err(format!(
        "Expression Syntax Error: {message} ({}, line {})",
        basename(filename),
        line_of(at)
    ))
}

/// `BaseEvaluator.wrap_expression`: the expression indented as a function body (`textwrap.indent`
/// leaves lines of only whitespace alone), called on the next line. The parameter names do not
/// change what compiles.
fn wrap(expression: &str) -> String {
    let mut out = String::from("def handler(ak_logger, ak_message, request, user, provider):\n");
    for line in expression.split_inclusive('\n') {
        if !line.trim().is_empty() {
            out.push_str("    ");
        }
        out.push_str(line);
    }
    out.push_str("\nresult = handler(ak_logger, ak_message, request, user, provider)");
    out
}

/// The first bracket still open at the end of the tokens, where it opened, and whether it
/// opened inside an f-string (a replacement field CPython words as `f-string: expecting '}'`).
fn unclosed_bracket(parsed: &Parsed<Mod>, source: &str) -> Option<(char, usize, bool)> {
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut fstrings = 0usize;
    for token in parsed.tokens() {
        match token.kind() {
            TokenKind::FStringStart | TokenKind::TStringStart => fstrings += 1,
            TokenKind::FStringEnd | TokenKind::TStringEnd => fstrings = fstrings.saturating_sub(1),
            TokenKind::Lpar | TokenKind::Lsqb | TokenKind::Lbrace => {
                open.push((usize::from(token.start()), fstrings > 0));
            }
            TokenKind::Rpar | TokenKind::Rsqb | TokenKind::Rbrace => {
                open.pop();
            }
            _ => {}
        }
    }
    let (offset, in_fstring) = *open.first()?;
    source[offset..].chars().next().map(|c| (c, offset, in_fstring))
}

/// Where a `from … import *` starts, if the tokens hold one.
fn star_import(parsed: &Parsed<Mod>) -> Option<usize> {
    let tokens: Vec<_> = parsed.tokens().iter().collect();
    let mut from = None;
    for t in &tokens {
        match t.kind() {
            TokenKind::From => from = Some(usize::from(t.start())),
            TokenKind::Newline => from = None,
            TokenKind::Star if from.is_some() => return from,
            _ => {}
        }
    }
    None
}

/// CPython shows a filename without its directories.
fn basename(filename: &str) -> &str {
    filename.rsplit('/').next().unwrap_or(filename)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPython 3.11–3.13's messages for these, compiled through the same wrapper.
    #[test]
    fn messages_follow_cpython() {
        let cases = [
            ("/", "invalid syntax (None, line 2)"),
            ("return (", "'(' was never closed (None, line 2)"),
            ("import os\nreturn os.", "invalid syntax (None, line 3)"),
            (
                "return 'abc",
                "unterminated string literal (detected at line 2) (None, line 2)",
            ),
        ];
        for (expression, want) in cases {
            assert_eq!(
                validate(expression, "None"),
                Err(format!("Expression Syntax Error: {want}")),
                "{expression:?}"
            );
        }
        assert_eq!(
            validate(";", "policies/temp-policy"),
            Err("Expression Syntax Error: invalid syntax (temp-policy, line 2)".to_string())
        );
    }

    #[test]
    fn valid_python_passes() {
        for expression in [
            "return {}",
            "return {\n    \"id\": request.user.pk,\n\n    \"name\": request.user.name,\n}",
            "if request.user.is_superuser:\n    return True\nreturn False",
            "x = [g.name for g in request.user.ak_groups.all()]\nreturn {'groups': x}",
            "return ak_is_group_member(request.user, name='staff')",
            "return f\"{request.user.username}@example.com\"",
        ] {
            assert_eq!(validate(expression, "None"), Ok(()), "{expression:?}");
        }
    }

    /// Ruff's parser against CPython's `compile()` on the same wrapped text: they must agree on
    /// what compiles, and where CPython's wording is one the simulator models, on the message.
    /// Needs `python3` (CI sets `SSOCTL_REQUIRE_NON_RUST_TESTS`, making a missing one a failure).
    #[test]
    fn agrees_with_cpython() {
        let corpus = [
            "return {}",
            "return None",
            "return",
            "/",
            ";",
            "return (",
            "return [1, 2",
            "return {'a': 1",
            "return 1 +",
            "return 'abc",
            "return \"\"\"abc",
            "x = = 1",
            "1 = x",
            "return request.user.",
            "if True:\nreturn 1",
            "if True:\n    return 1\n  return 2",
            "  return 1",
            "for x in []:\n    pass\nelse:\n    return x",
            "lambda: (yield)",
            "return [x for x in range(3) if x]",
            "return {k: v for k, v in {}.items()}",
            "import os\nreturn os.",
            "from re import *",
            "def f():\n    return 1\nreturn f()",
            "class A:\n    pass\nreturn A",
            "try:\n    x = 1\nexcept Exception:\n    x = 2\nreturn x",
            "try:\n    x = 1\nreturn x",
            "return f'{request.user.username}'",
            "return f'{'",
            "with open('x') as f:\n    return f.read()",
            "return 1 if True else",
            "del",
            "global x\nreturn x",
            "async def f():\n    await g()\nreturn 1",
            "return not",
            "return a.b.c(d, e=f, *g, **h)",
            "return a[1:2, ::3]",
            "match x:\n    case 1:\n        return 1",
            "print 'hello'",
            "return 0x",
            "return 1_000",
            "return 09",
            "x: int = 1\nreturn x",
            "return (a := 1)",
            "raise ValueError('no')",
            "assert request.user, 'who'",
            "return ak_is_group_member(request.user, name=\"staff\")",
        ];
        let script = "import json,sys\n\
            out=[]\n\
            for e in json.load(sys.stdin):\n\
            \x20   import textwrap\n\
            \x20   src='def handler(ak_logger, ak_message, request, user, provider):\\n'+textwrap.indent(e,'    ')+'\\nresult = handler(ak_logger, ak_message, request, user, provider)'\n\
            \x20   try:\n\
            \x20       compile(src, 'None', 'exec'); out.append(None)\n\
            \x20   except (SyntaxError, ValueError) as exc:\n\
            \x20       out.append(str(exc))\n\
            print(json.dumps(out))\n";
        let child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if std::env::var_os("SSOCTL_REQUIRE_NON_RUST_TESTS").is_none() => {
                eprintln!("SKIPPED agrees_with_cpython: python3 not found ({e})");
                return;
            }
            Err(e) => panic!("python3 is required here: {e}"),
        };
        use std::io::Write;
        let input = serde_json::to_vec(&corpus[..]).expect("json");
        child.stdin.take().expect("stdin").write_all(&input).expect("write");
        let output = child.wait_with_output().expect("python3 ran");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let cpython: Vec<Option<String>> = serde_json::from_slice(&output.stdout).expect("python3's answer");
        let mut disagreements = Vec::new();
        for (expression, theirs) in corpus.iter().zip(&cpython) {
            let ours = validate(expression, "None").err();
            let theirs = theirs.as_ref().map(|m| format!("Expression Syntax Error: {m}"));
            let agree = match (&ours, &theirs) {
                (None, None) => true,
                (Some(o), Some(t)) => o == t || o.contains(": invalid syntax (") && !modelled(t),
                _ => false,
            };
            if !agree {
                disagreements.push(format!("{expression:?}: ssoctl-sim {ours:?}, CPython {theirs:?}"));
            }
        }
        assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    }

    /// Whether CPython's message is one of those [`validate`] words as CPython does.
    fn modelled(message: &str) -> bool {
        [
            "invalid syntax (",
            "was never closed",
            "unterminated",
            "unexpected indent",
            "unindent does not match",
        ]
        .iter()
        .any(|m| message.contains(m))
    }
}
