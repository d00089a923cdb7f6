//! The syntax tree of OTTL statements and conditions, as the parser produces it.

/// A statement: an editor call with an optional `where` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The editor call, e.g. `set(attributes["a"], "b")`.
    pub editor: Call,
    /// The `where` clause, if any.
    pub where_clause: Option<BoolExpr>,
}

/// A function call: an editor (lowercase name) or a converter (uppercase name).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The function name as written.
    pub name: String,
    /// The arguments in order.
    pub args: Vec<Argument>,
    /// Whether the call is indexed (`Split(x, ",")[0]`), which the subset does not support.
    pub indexed: bool,
    /// 1-based column of the name.
    pub column: usize,
}

/// One argument of a call, optionally named (`name = value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Argument {
    /// The argument name for named arguments.
    pub name: Option<String>,
    /// The value.
    pub value: Value,
}

/// A value: a literal, a path, a converter call, an enum symbol or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A string literal, unescaped.
    String(String),
    /// A bytes literal (`0x…`).
    Bytes(Vec<u8>),
    /// An enum symbol such as `METRIC_DATA_TYPE_SUM`.
    Enum {
        /// The symbol.
        name: String,
        /// 1-based column.
        column: usize,
    },
    /// A telemetry path.
    Path(Path),
    /// A converter call.
    Converter(Call),
    /// A list literal `[a, b]`.
    List(Vec<Value>),
}

/// A telemetry path such as `resource.attributes["process.pid"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The segments in order, the context name (if written) included.
    pub segments: Vec<Segment>,
    /// 1-based column of the path.
    pub column: usize,
}

impl Path {
    /// The path as written, keys included.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(&s.name);
            for key in &s.keys {
                match key {
                    Key::String(k) => {
                        out.push_str("[\"");
                        out.push_str(k);
                        out.push_str("\"]");
                    }
                    Key::Int(i) => {
                        out.push('[');
                        out.push_str(&i.to_string());
                        out.push(']');
                    }
                }
            }
        }
        out
    }
}

/// One segment of a path: a name and its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The field name.
    pub name: String,
    /// Keys indexing the field, e.g. `["process.pid"]`.
    pub keys: Vec<Key>,
}

/// A key indexing a path segment.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// A string key.
    String(String),
    /// An integer index.
    Int(i64),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn reversed(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
            other => other,
        }
    }
}

/// A boolean expression: a `where` clause or a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum BoolExpr {
    /// Terms joined by `or`.
    Or(Vec<BoolExpr>),
    /// Values joined by `and`.
    And(Vec<BoolExpr>),
    /// `not` applied to a value.
    Not(Box<BoolExpr>),
    /// A comparison of two values.
    Compare(Value, CompareOp, Value),
    /// `true` or `false`.
    Const(bool),
    /// A converter returning a boolean, e.g. `IsMatch(...)`.
    Converter(Call),
}
