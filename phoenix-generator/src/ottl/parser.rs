//! Lexer and recursive-descent parser for OTTL statements and conditions.
//!
//! The grammar follows `pkg/ottl/grammar.go` of opentelemetry-collector-contrib: a statement is
//! an editor call with an optional `where` clause; a condition is a boolean expression of
//! comparisons, `true`/`false` and converter calls joined by `and`, `or` and `not`, with
//! parentheses. String literals use Go's escapes (`\"`, `\\`, `\n`, `\t`, `\xhh`, `\u…`, …),
//! as the collector unquotes them with `strconv.UnquoteChar`; any other escape is an error.
//! Math expressions, map literals and indexed converter calls are parsed far enough to be
//! reported as unsupported.

use super::SyntaxError;
use super::ast::{Argument, BoolExpr, Call, CompareOp, Key, Path, Segment, Statement, Value};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Cmp(CompareOp),
    Math(char),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dot,
    Equal,
    Colon,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    column: usize,
}

fn err(column: usize, message: impl Into<String>) -> SyntaxError {
    SyntaxError::syntax(column, message)
}

fn lex(text: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            ',' => Some(Tok::Comma),
            ':' => Some(Tok::Colon),
            '*' | '/' => Some(Tok::Math(c)),
            _ => None,
        };
        if let Some(tok) = simple {
            tokens.push(Token { tok, column });
            i += 1;
            continue;
        }
        match c {
            '=' | '!' | '<' | '>' => {
                let (tok, len) = match (c, next) {
                    ('=', Some('=')) => (Tok::Cmp(CompareOp::Eq), 2),
                    ('!', Some('=')) => (Tok::Cmp(CompareOp::Ne), 2),
                    ('<', Some('=')) => (Tok::Cmp(CompareOp::Le), 2),
                    ('>', Some('=')) => (Tok::Cmp(CompareOp::Ge), 2),
                    ('<', _) => (Tok::Cmp(CompareOp::Lt), 1),
                    ('>', _) => (Tok::Cmp(CompareOp::Gt), 1),
                    ('=', _) => (Tok::Equal, 1),
                    _ => return Err(err(column, "unexpected `!`")),
                };
                tokens.push(Token { tok, column });
                i += len;
            }
            '"' => {
                let (s, end) = lex_string(&chars, i)?;
                tokens.push(Token {
                    tok: Tok::Str(s),
                    column,
                });
                i = end;
            }
            '0' if matches!(next, Some('x'))
                && chars.get(i + 2).is_some_and(char::is_ascii_hexdigit) =>
            {
                let mut j = i + 2;
                while j < chars.len() && chars[j].is_ascii_hexdigit() {
                    j += 1;
                }
                let hex: String = chars[i + 2..j].iter().collect();
                if !hex.len().is_multiple_of(2) {
                    return Err(err(
                        column,
                        format!("bytes literal 0x{hex} has an odd number of digits"),
                    ));
                }
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|k| u8::from_str_radix(&hex[k..k + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|e| err(column, format!("bytes literal 0x{hex}: {e}")))?;
                tokens.push(Token {
                    tok: Tok::Bytes(bytes),
                    column,
                });
                i = j;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+' || c == '.')
                    && next.is_some_and(|n| n.is_ascii_digit() || n == '.')) =>
            {
                let (tok, end) = lex_number(&chars, i)?;
                tokens.push(Token { tok, column });
                i = end;
            }
            '+' | '-' => {
                tokens.push(Token {
                    tok: Tok::Math(c),
                    column,
                });
                i += 1;
            }
            '.' => {
                tokens.push(Token {
                    tok: Tok::Dot,
                    column,
                });
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                tokens.push(Token {
                    tok: Tok::Ident(chars[i..j].iter().collect()),
                    column,
                });
                i = j;
            }
            other => return Err(err(column, format!("unexpected character `{other}`"))),
        }
    }
    tokens.push(Token {
        tok: Tok::End,
        column: chars.len() + 1,
    });
    Ok(tokens)
}

fn lex_number(chars: &[char], start: usize) -> Result<(Tok, usize), SyntaxError> {
    let mut j = start;
    if chars[j] == '-' || chars[j] == '+' {
        j += 1;
    }
    let mut is_float = false;
    while j < chars.len() && chars[j].is_ascii_digit() {
        j += 1;
    }
    if j < chars.len() && chars[j] == '.' && chars.get(j + 1).is_some_and(char::is_ascii_digit) {
        is_float = true;
        j += 1;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        if j < chars.len() && (chars[j] == 'e' || chars[j] == 'E') {
            let mut k = j + 1;
            if k < chars.len() && (chars[k] == '-' || chars[k] == '+') {
                k += 1;
            }
            if k < chars.len() && chars[k].is_ascii_digit() {
                while k < chars.len() && chars[k].is_ascii_digit() {
                    k += 1;
                }
                j = k;
            }
        }
    }
    let text: String = chars[start..j].iter().collect();
    let column = start + 1;
    if is_float {
        text.parse::<f64>()
            .map(|f| (Tok::Float(f), j))
            .map_err(|e| err(column, format!("float literal `{text}`: {e}")))
    } else {
        text.parse::<i64>()
            .map(|v| (Tok::Int(v), j))
            .map_err(|e| err(column, format!("integer literal `{text}`: {e}")))
    }
}

/// Reads a double-quoted string starting at `start`, applying Go's escapes.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), SyntaxError> {
    let mut out = String::new();
    let mut j = start + 1;
    loop {
        let Some(&c) = chars.get(j) else {
            return Err(err(start + 1, "unterminated string literal"));
        };
        match c {
            '"' => return Ok((out, j + 1)),
            '\\' => {
                let column = j + 1;
                let Some(&e) = chars.get(j + 1) else {
                    return Err(err(start + 1, "unterminated string literal"));
                };
                j += 2;
                let simple = match e {
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\u{b}'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    _ => None,
                };
                if let Some(s) = simple {
                    out.push(s);
                    continue;
                }
                let (digits, radix) = match e {
                    'x' => (2, 16),
                    'u' => (4, 16),
                    'U' => (8, 16),
                    '0'..='7' => {
                        j -= 1;
                        (3, 8)
                    }
                    other => {
                        return Err(err(
                            column,
                            format!(
                                "invalid escape `\\{other}` in string literal (OTTL strings use Go escapes; write `\\\\{other}` for a literal backslash)"
                            ),
                        ));
                    }
                };
                let text: String = chars
                    .get(j..j + digits)
                    .map(|s| s.iter().collect())
                    .unwrap_or_default();
                let code = (text.chars().count() == digits)
                    .then(|| u32::from_str_radix(&text, radix).ok())
                    .flatten()
                    .ok_or_else(|| {
                        err(
                            column,
                            format!("invalid escape `\\{e}{text}` in string literal"),
                        )
                    })?;
                j += digits;
                if e == 'x' || radix == 8 {
                    if code > 255 {
                        return Err(err(column, "octal escape above \\377 in string literal"));
                    }
                    // Go writes the byte itself; bytes above 0x7f would make invalid UTF-8.
                    if code > 0x7f {
                        return Err(err(column, "byte escapes above 0x7f are not supported"));
                    }
                }
                let ch = char::from_u32(code).ok_or_else(|| {
                    err(
                        column,
                        format!("escape `\\{e}{text}` is not a valid character"),
                    )
                })?;
                out.push(ch);
            }
            _ => {
                out.push(c);
                j += 1;
            }
        }
    }
}

/// How deeply expressions, lists and calls may nest.
const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// Parses a statement (`editor(args) where condition`).
pub fn parse_statement(text: &str) -> Result<Statement, SyntaxError> {
    let mut p = Parser::new(text)?;
    let editor = p.call()?;
    if !is_editor_name(&editor.name) {
        return Err(err(
            editor.column,
            format!(
                "editor names must start with a lowercase letter but got `{}`",
                editor.name
            ),
        ));
    }
    if editor.indexed {
        return Err(err(
            editor.column,
            format!("editor `{}` cannot be indexed", editor.name),
        ));
    }
    let where_clause = if p.eat_keyword("where") {
        Some(p.bool_expr()?)
    } else {
        None
    };
    p.expect_end()?;
    Ok(Statement {
        editor,
        where_clause,
    })
}

/// Parses a condition (a boolean expression).
pub fn parse_condition(text: &str) -> Result<BoolExpr, SyntaxError> {
    let mut p = Parser::new(text)?;
    let expr = p.bool_expr()?;
    p.expect_end()?;
    Ok(expr)
}

fn is_editor_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_converter_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Int(i) => format!("`{i}`"),
        Tok::Float(f) => format!("`{f}`"),
        Tok::Str(s) => format!("string \"{s}\""),
        Tok::Bytes(_) => "bytes literal".to_owned(),
        Tok::Cmp(op) => format!("operator {op:?}"),
        Tok::Math(c) => format!("`{c}`"),
        Tok::LParen => "`(`".to_owned(),
        Tok::RParen => "`)`".to_owned(),
        Tok::LBracket => "`[`".to_owned(),
        Tok::RBracket => "`]`".to_owned(),
        Tok::LBrace => "`{`".to_owned(),
        Tok::RBrace => "`}`".to_owned(),
        Tok::Comma => "`,`".to_owned(),
        Tok::Dot => "`.`".to_owned(),
        Tok::Equal => "`=`".to_owned(),
        Tok::Colon => "`:`".to_owned(),
        Tok::End => "end of input".to_owned(),
    }
}

impl Parser {
    fn new(text: &str) -> Result<Self, SyntaxError> {
        Ok(Self {
            tokens: lex(text)?,
            pos: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, offset: usize) -> &Tok {
        &self.tokens[(self.pos + offset).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<Token, SyntaxError> {
        let t = self.peek().clone();
        if &t.tok == want {
            self.pos += 1;
            Ok(t)
        } else {
            Err(err(
                t.column,
                format!("expected {what}, found {}", describe(&t.tok)),
            ))
        }
    }

    fn expect_end(&mut self) -> Result<(), SyntaxError> {
        let t = self.peek();
        match &t.tok {
            Tok::End => Ok(()),
            Tok::Math(c) => Err(SyntaxError::unsupported(
                t.column,
                format!("math expression (`{c}`)"),
            )),
            other => Err(err(t.column, format!("unexpected {}", describe(other)))),
        }
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s == word)
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.is_keyword(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(
                self.peek().column,
                format!("nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    fn bool_expr(&mut self) -> Result<BoolExpr, SyntaxError> {
        self.enter()?;
        let result = self.bool_expr_inner();
        self.depth -= 1;
        result
    }

    fn bool_expr_inner(&mut self) -> Result<BoolExpr, SyntaxError> {
        let mut terms = vec![self.term()?];
        while self.eat_keyword("or") {
            terms.push(self.term()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            BoolExpr::Or(terms)
        })
    }

    fn term(&mut self) -> Result<BoolExpr, SyntaxError> {
        let mut values = vec![self.bool_value()?];
        while self.eat_keyword("and") {
            values.push(self.bool_value()?);
        }
        Ok(if values.len() == 1 {
            values.remove(0)
        } else {
            BoolExpr::And(values)
        })
    }

    fn bool_value(&mut self) -> Result<BoolExpr, SyntaxError> {
        let negated = self.eat_keyword("not");
        let inner = if self.peek().tok == Tok::LParen {
            self.bump();
            let e = self.bool_expr()?;
            self.expect(&Tok::RParen, "`)`")?;
            e
        } else {
            let column = self.peek().column;
            let left = self.value()?;
            if let Tok::Cmp(op) = self.peek().tok {
                self.bump();
                let right = self.value()?;
                BoolExpr::Compare(left, op, right)
            } else {
                match left {
                    Value::Bool(b) => BoolExpr::Const(b),
                    Value::Converter(call) => BoolExpr::Converter(call),
                    _ => {
                        let t = self.peek();
                        return Err(err(
                            t.column.max(column),
                            format!(
                                "expected a comparison operator after the value at column {column}, found {}",
                                describe(&t.tok)
                            ),
                        ));
                    }
                }
            }
        };
        Ok(if negated {
            BoolExpr::Not(Box::new(inner))
        } else {
            inner
        })
    }

    fn value(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        let result = self.value_inner();
        self.depth -= 1;
        result
    }

    fn value_inner(&mut self) -> Result<Value, SyntaxError> {
        let t = self.peek().clone();
        let v = match t.tok {
            Tok::Int(i) => {
                self.bump();
                Value::Int(i)
            }
            Tok::Float(f) => {
                self.bump();
                Value::Float(f)
            }
            Tok::Str(s) => {
                self.bump();
                Value::String(s)
            }
            Tok::Bytes(b) => {
                self.bump();
                Value::Bytes(b)
            }
            Tok::LBracket => {
                self.bump();
                let mut items = Vec::new();
                if self.peek().tok != Tok::RBracket {
                    items.push(self.value()?);
                    while self.peek().tok == Tok::Comma {
                        self.bump();
                        items.push(self.value()?);
                    }
                }
                self.expect(&Tok::RBracket, "`,` or `]` in list")?;
                Value::List(items)
            }
            Tok::LBrace => {
                return Err(SyntaxError::unsupported(t.column, "map literal"));
            }
            Tok::LParen => {
                return Err(SyntaxError::unsupported(
                    t.column,
                    "parenthesised math expression",
                ));
            }
            Tok::Ident(ref name) => match name.as_str() {
                "nil" => {
                    self.bump();
                    Value::Nil
                }
                "true" | "false" => {
                    self.bump();
                    Value::Bool(name == "true")
                }
                _ if is_converter_name(name) => {
                    if *self.peek_at(1) == Tok::LParen {
                        let call = self.call()?;
                        if call.indexed {
                            return Err(SyntaxError::unsupported(
                                call.column,
                                format!("indexing the result of converter `{}`", call.name),
                            ));
                        }
                        Value::Converter(call)
                    } else if name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    {
                        self.bump();
                        Value::Enum {
                            name: name.clone(),
                            column: t.column,
                        }
                    } else {
                        return Err(err(
                            t.column,
                            format!("expected `(` after converter `{name}`"),
                        ));
                    }
                }
                _ => {
                    if *self.peek_at(1) == Tok::LParen {
                        return Err(err(
                            t.column,
                            format!(
                                "converter names must start with an uppercase letter but got `{name}`"
                            ),
                        ));
                    }
                    Value::Path(self.path()?)
                }
            },
            ref other => {
                return Err(err(
                    t.column,
                    format!("expected a value, found {}", describe(other)),
                ));
            }
        };
        if let Tok::Math(c) = self.peek().tok {
            return Err(SyntaxError::unsupported(
                self.peek().column,
                format!("math expression (`{c}`)"),
            ));
        }
        Ok(v)
    }

    fn path(&mut self) -> Result<Path, SyntaxError> {
        let column = self.peek().column;
        let mut segments = vec![self.segment()?];
        while self.peek().tok == Tok::Dot {
            self.bump();
            segments.push(self.segment()?);
        }
        Ok(Path { segments, column })
    }

    fn segment(&mut self) -> Result<Segment, SyntaxError> {
        let t = self.bump();
        let Tok::Ident(name) = t.tok else {
            return Err(err(
                t.column,
                format!("expected a path segment, found {}", describe(&t.tok)),
            ));
        };
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(err(
                t.column,
                format!("path segments must be lowercase, got `{name}`"),
            ));
        }
        let keys = self.keys()?;
        Ok(Segment { name, keys })
    }

    fn keys(&mut self) -> Result<Vec<Key>, SyntaxError> {
        let mut keys = Vec::new();
        while self.peek().tok == Tok::LBracket {
            self.bump();
            let t = self.bump();
            let key = match t.tok {
                Tok::Str(s) => Key::String(s),
                Tok::Int(i) => Key::Int(i),
                _ => {
                    return Err(SyntaxError::unsupported(
                        t.column,
                        "a key that is not a string or integer literal",
                    ));
                }
            };
            self.expect(&Tok::RBracket, "`]`")?;
            keys.push(key);
        }
        Ok(keys)
    }

    fn call(&mut self) -> Result<Call, SyntaxError> {
        let t = self.bump();
        let Tok::Ident(name) = t.tok else {
            return Err(err(
                t.column,
                format!("expected a function call, found {}", describe(&t.tok)),
            ));
        };
        self.expect(&Tok::LParen, &format!("`(` after `{name}`"))?;
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            args.push(self.argument()?);
            while self.peek().tok == Tok::Comma {
                self.bump();
                args.push(self.argument()?);
            }
        }
        self.expect(&Tok::RParen, "`,` or `)` in argument list")?;
        let indexed = !self.keys()?.is_empty();
        Ok(Call {
            name,
            args,
            indexed,
            column: t.column,
        })
    }

    fn argument(&mut self) -> Result<Argument, SyntaxError> {
        if let (Tok::Ident(name), Tok::Equal) = (self.peek().tok.clone(), self.peek_at(1).clone()) {
            self.bump();
            self.bump();
            let value = self.value()?;
            return Ok(Argument {
                name: Some(name),
                value,
            });
        }
        // A bare function name as an argument (`FunctionName`) is outside the subset.
        if let (Tok::Ident(name), next) = (self.peek().tok.clone(), self.peek_at(1).clone())
            && is_converter_name(&name)
            && next != Tok::LParen
            && !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(SyntaxError::unsupported(
                self.peek().column,
                format!("function name `{name}` as an argument"),
            ));
        }
        Ok(Argument {
            name: None,
            value: self.value()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_statement_with_where() {
        let s = parse_statement(
            r#"set(resource.attributes["a.b"], "x\"y") where IsMatch(resource.attributes["n"], "^j.*$") and not (metric.name == "m" or 1 < 2.5)"#,
        )
        .unwrap();
        assert_eq!(s.editor.name, "set");
        assert_eq!(s.editor.args.len(), 2);
        assert_eq!(s.editor.args[1].value, Value::String("x\"y".to_owned()));
        let Value::Path(p) = &s.editor.args[0].value else {
            panic!()
        };
        assert_eq!(p.text(), r#"resource.attributes["a.b"]"#);
        let Some(BoolExpr::And(parts)) = s.where_clause else {
            panic!()
        };
        assert!(matches!(parts[0], BoolExpr::Converter(_)));
        assert!(matches!(parts[1], BoolExpr::Not(_)));
    }

    #[test]
    fn or_binds_looser_than_and() {
        let e = parse_condition("true and false or nil == nil").unwrap();
        let BoolExpr::Or(terms) = e else { panic!() };
        assert_eq!(terms.len(), 2);
        assert!(matches!(terms[0], BoolExpr::And(_)));
    }

    #[test]
    fn literals_and_enums() {
        let e = parse_condition("metric.type == METRIC_DATA_TYPE_SUM").unwrap();
        let BoolExpr::Compare(_, CompareOp::Eq, Value::Enum { name, column }) = e else {
            panic!()
        };
        assert_eq!(name, "METRIC_DATA_TYPE_SUM");
        assert_eq!(column, 16);
        let e = parse_condition("datapoint.value_double >= -1.5e3").unwrap();
        assert!(matches!(e, BoolExpr::Compare(_, CompareOp::Ge, Value::Float(f)) if f == -1500.0));
        let e = parse_condition("attributes[\"k\"] != 0x0aff").unwrap();
        assert!(
            matches!(e, BoolExpr::Compare(_, CompareOp::Ne, Value::Bytes(ref b)) if b == &[0x0a, 0xff])
        );
    }

    #[test]
    fn go_escapes() {
        let s = parse_statement(r#"set(attributes["k"], "a\\.b\t\u00e9\x41")"#).unwrap();
        assert_eq!(
            s.editor.args[1].value,
            Value::String("a\\.b\t\u{e9}A".to_owned())
        );
        let e = parse_statement(r#"set(attributes["k"], "a\.b")"#).unwrap_err();
        assert_eq!(e.column, 24);
        assert!(e.message.contains("invalid escape"), "{}", e.message);
    }

    #[test]
    fn errors_carry_columns() {
        let e = parse_condition("metric.name == ").unwrap_err();
        assert_eq!(e.column, 16);
        let e = parse_statement("Set(attributes[\"a\"], 1)").unwrap_err();
        assert!(e.message.contains("lowercase"));
        let e = parse_condition("metric.name").unwrap_err();
        assert!(e.message.contains("comparison"), "{}", e.message);
        let e = parse_condition("datapoint.value_int + 1 > 2").unwrap_err();
        assert!(e.unsupported && e.message.contains("math"), "{e:?}");
        let e = parse_condition("(metric.name == \"a\"").unwrap_err();
        assert!(e.message.contains("`)`"));
        let e = parse_condition("\"abc").unwrap_err();
        assert!(e.message.contains("unterminated"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
        let e = parse_condition(&text).unwrap_err();
        assert!(e.message.contains("nested"), "{e:?}");
        let text = format!(
            "IsMatch({}\"a\"{}, \"b\")",
            "[".repeat(5_000),
            "]".repeat(5_000)
        );
        assert!(parse_condition(&text).is_err());
    }

    #[test]
    fn lists_and_named_arguments() {
        let s = parse_statement(r#"keep_keys(attributes, ["a", "b"])"#).unwrap();
        assert_eq!(
            s.editor.args[1].value,
            Value::List(vec![Value::String("a".into()), Value::String("b".into())])
        );
        let s = parse_statement(r#"aggregate_on_attributes("sum", attributes = [])"#).unwrap();
        assert_eq!(s.editor.args[1].name.as_deref(), Some("attributes"));
    }
}
