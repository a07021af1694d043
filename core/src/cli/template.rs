//! The part of Go's text/template that docker's `--format` and
//! `inspect -f` users write, evaluated on JSON: `{{.Field}}`, nested
//! `{{.State.Status}}`, `{{.}}`, variables (`$`, `{{range $k, $v :=
//! .Labels}}`), pipelines (`{{.Names | upper}}`), `if`/`else`/`range`/
//! `with`/`end`, `{{-` and `-}}` trimming, string and number literals,
//! and docker's template functions (json, join, split, upper, lower,
//! title, truncate, pad, println) with Go's (index, len, eq, ne, lt, le,
//! gt, ge, not, and, or, print, printf).
//!
//! Values print as Go prints them (`[a b]`, `map[k:v]`). A key missing
//! from an object is an error, as docker runs its templates with
//! `missingkey=error`. Not here: `define`/`template`/`block`, method
//! calls with arguments (`{{.Label "k"}}`), and printf verbs beyond
//! `%s %d %v %q %%`.

use serde_json::Value;

/// Why a template did not parse or run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template parsing error: template: executing \"\" {0}")]
    Exec(String),
}

type Result<T> = std::result::Result<T, TemplateError>;

fn parse_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(TemplateError::Parse(msg.into()))
}

fn exec_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(TemplateError::Exec(msg.into()))
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Text(String),
    Output(Pipe),
    If { pipe: Pipe, then: Vec<Node>, otherwise: Vec<Node> },
    With { pipe: Pipe, then: Vec<Node>, otherwise: Vec<Node> },
    Range { pipe: Pipe, body: Vec<Node>, otherwise: Vec<Node> },
}

/// `$a, $b := cmd | cmd`.
#[derive(Debug)]
struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Vec<Term>>,
}

#[derive(Debug)]
enum Term {
    /// `.A.B` (empty: `.`).
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root).
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    /// `(pipeline)` and the fields chained after it: `(index .A 0).B`.
    Sub(Pipe, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    Pipe,
    Open,
    Close,
    /// `.B` right after a `)`.
    Chain(Vec<String>),
    Declare,
    Comma,
}

/// Splits `s` into text and actions, applying `{{-` / `-}}` trimming.
fn split(s: &str) -> Result<Vec<(bool, String)>> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = s;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let trim_before = after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_before {
            text = text.trim_end();
        }
        if !text.is_empty() {
            out.push((false, text.to_string()));
        }
        let Some(end) = after.find("}}") else {
            return parse_err("unclosed action");
        };
        let mut action = &after[..end];
        if trim_before {
            action = &action[1..];
        }
        trim_next = action.ends_with(" -") || action.ends_with("\t-") || action.ends_with("\n-");
        if trim_next {
            action = &action[..action.len() - 1];
        }
        let action = action.trim();
        if !(action.starts_with("/*") && action.ends_with("*/")) {
            out.push((true, action.to_string()));
        }
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        out.push((false, text.to_string()));
    }
    Ok(out)
}

/// `.A.B` (after the leading character) as its keys.
fn path(s: &str) -> Vec<String> {
    s.split('.').filter(|k| !k.is_empty()).map(str::to_string).collect()
}

fn lex(action: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = action.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let word_end = |mut j: usize| {
        while j < chars.len() && (chars[j].is_alphanumeric() || matches!(chars[j], '_' | '.')) {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '|' | '(' | ')' | ',' | '=' => {
                toks.push(match c {
                    '|' => Tok::Pipe,
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Declare,
                });
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '.' => {
                let end = word_end(i + 1);
                let p = path(&chars[i..end].iter().collect::<String>());
                toks.push(if i > 0 && chars[i - 1] == ')' {
                    Tok::Chain(p)
                } else {
                    Tok::Field(p)
                });
                i = end;
            }
            '$' => {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let name: String = chars[i..end].iter().collect();
                let fields_end = word_end(end);
                toks.push(Tok::Var(name, path(&chars[end..fields_end].iter().collect::<String>())));
                i = fields_end;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return parse_err("unterminated quoted string"),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some(&other) => s.push(other),
                                None => return parse_err("unterminated quoted string"),
                            }
                        }
                        Some(&ch) => s.push(ch),
                    }
                    i += 1;
                }
                toks.push(Tok::Lit(Value::String(s)));
                i += 1;
            }
            '`' => {
                let Some(len) = chars[i + 1..].iter().position(|&ch| ch == '`') else {
                    return parse_err("unterminated raw quoted string");
                };
                toks.push(Tok::Lit(Value::String(chars[i + 1..i + 1 + len].iter().collect())));
                i += len + 2;
            }
            _ if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_ascii_digit() || chars[end] == '.') {
                    end += 1;
                }
                let text: String = chars[i..end].iter().collect();
                let v = match text.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => match text.parse::<f64>() {
                        Ok(f) => Value::from(f),
                        Err(_) => return parse_err(format!("bad number syntax: {text:?}")),
                    },
                };
                toks.push(Tok::Lit(v));
                i = end;
            }
            _ if c.is_alphabetic() || c == '_' => {
                let mut end = i;
                while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let word: String = chars[i..end].iter().collect();
                toks.push(match word.as_str() {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "nil" => Tok::Lit(Value::Null),
                    _ => Tok::Ident(word),
                });
                i = end;
            }
            other => return parse_err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(toks)
}

/// Parses a pipeline from tokens, stopping at a `)` at depth 0.
fn parse_pipe(toks: &[Tok], pos: &mut usize, declare: bool) -> Result<Pipe> {
    let mut decl = Vec::new();
    if declare {
        // `$a := ...` or `$a, $b := ...`
        let mut j = *pos;
        let mut names = Vec::new();
        while let Some(Tok::Var(name, fields)) = toks.get(j) {
            if !fields.is_empty() {
                break;
            }
            names.push(name.clone());
            j += 1;
            match toks.get(j) {
                Some(Tok::Comma) => j += 1,
                Some(Tok::Declare) => {
                    decl = names;
                    *pos = j + 1;
                    break;
                }
                _ => break,
            }
        }
    }
    let mut cmds: Vec<Vec<Term>> = vec![Vec::new()];
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        let term = match t {
            Tok::Close => {
                *pos -= 1;
                break;
            }
            Tok::Pipe => {
                cmds.push(Vec::new());
                continue;
            }
            Tok::Open => {
                let sub = parse_pipe(toks, pos, false)?;
                if toks.get(*pos) != Some(&Tok::Close) {
                    return parse_err("unclosed left paren");
                }
                *pos += 1;
                match toks.get(*pos) {
                    Some(Tok::Chain(p)) => {
                        *pos += 1;
                        Term::Sub(sub, p.clone())
                    }
                    _ => Term::Sub(sub, Vec::new()),
                }
            }
            Tok::Field(p) => Term::Field(p.clone()),
            Tok::Var(n, p) => Term::Var(n.clone(), p.clone()),
            Tok::Ident(name) => Term::Func(name.clone()),
            Tok::Lit(v) => Term::Lit(v.clone()),
            Tok::Declare | Tok::Comma | Tok::Chain(_) => return parse_err("unexpected := , or field in command"),
        };
        cmds.last_mut().expect("cmds starts with one command").push(term);
    }
    if cmds.iter().any(Vec::is_empty) {
        return parse_err("missing value for command");
    }
    Ok(Pipe { decl, cmds })
}

fn parse_action(action: &str, declare: bool) -> Result<Pipe> {
    let toks = lex(action)?;
    let mut pos = 0;
    let pipe = parse_pipe(&toks, &mut pos, declare)?;
    if pos != toks.len() {
        return parse_err(format!("unexpected ) in {action:?}"));
    }
    Ok(pipe)
}

/// What ended a list of nodes.
enum ListEnd {
    /// The end of the template.
    Eof,
    /// `{{end}}`.
    End,
    /// `{{else}}`, or `{{else if ...}}` with what follows `else`.
    Else(String),
}

fn parse_list(items: &[(bool, String)], pos: &mut usize) -> Result<(Vec<Node>, ListEnd)> {
    let mut nodes = Vec::new();
    while let Some((is_action, s)) = items.get(*pos) {
        *pos += 1;
        if !is_action {
            nodes.push(Node::Text(s.clone()));
            continue;
        }
        let (word, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        match word {
            "end" => return Ok((nodes, ListEnd::End)),
            "else" => return Ok((nodes, ListEnd::Else(rest.trim().to_string()))),
            "if" | "with" | "range" => nodes.push(parse_block(word, rest, items, pos)?),
            "define" | "template" | "block" => return parse_err(format!("{{{{{word}}}}} is not supported")),
            _ => nodes.push(Node::Output(parse_action(s, true)?)),
        }
    }
    Ok((nodes, ListEnd::Eof))
}

/// An `if`/`with`/`range` block after its keyword, up to its `end`.
fn parse_block(word: &str, rest: &str, items: &[(bool, String)], pos: &mut usize) -> Result<Node> {
    let pipe = parse_action(rest, word != "if")?;
    let (then, end) = parse_list(items, pos)?;
    let otherwise = match end {
        ListEnd::Eof => return parse_err(format!("unexpected EOF: {{{{{word}}}}} without {{{{end}}}}")),
        ListEnd::End => Vec::new(),
        ListEnd::Else(cond) if cond.is_empty() => match parse_list(items, pos)? {
            (nodes, ListEnd::End) => nodes,
            _ => return parse_err(format!("{{{{{word}}}}}: {{{{else}}}} without {{{{end}}}}")),
        },
        // `else if x` / `else with x`: a nested block sharing our end.
        ListEnd::Else(cond) => {
            let (w, r) = cond.split_once(char::is_whitespace).unwrap_or((&cond, ""));
            if !matches!(w, "if" | "with") {
                return parse_err(format!("unexpected {cond:?} after else"));
            }
            vec![parse_block(w, r, items, pos)?]
        }
    };
    Ok(match word {
        "if" => Node::If { pipe, then, otherwise },
        "with" => Node::With { pipe, then, otherwise },
        _ => Node::Range {
            pipe,
            body: then,
            otherwise,
        },
    })
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Template> {
        let items = split(text)?;
        let mut pos = 0;
        match parse_list(&items, &mut pos)? {
            (nodes, ListEnd::Eof) => Ok(Template { nodes }),
            (_, ListEnd::End) => parse_err("unexpected {{end}}"),
            (_, ListEnd::Else(_)) => parse_err("unexpected {{else}}"),
        }
    }

    /// Runs the template with `data` as dot.
    pub fn render(&self, data: &Value) -> Result<String> {
        let mut ex = Exec {
            vars: vec![("$".to_string(), data.clone())],
            out: String::new(),
        };
        ex.nodes(&self.nodes, data)?;
        Ok(ex.out)
    }
}

/// Go's truth: false, 0, nil and empty things are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A value as Go's `fmt` prints it with `%v`.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter().map(|(k, v)| format!("{k}:{}", go_print(v))).collect::<Vec<_>>().join(" ")
        ),
    }
}

fn field(mut v: Value, keys: &[String], shown: &str) -> Result<Value> {
    for k in keys {
        v = match v {
            Value::Object(mut o) => match o.remove(k) {
                Some(x) => x,
                None => return exec_err(format!("at <{shown}>: map has no entry for key {k:?}")),
            },
            Value::Null => return exec_err(format!("at <{shown}>: nil pointer evaluating .{k}")),
            other => return exec_err(format!("at <{shown}>: can't evaluate field {k} in {}", go_print(&other))),
        };
    }
    Ok(v)
}

struct Exec {
    vars: Vec<(String, Value)>,
    out: String,
}

impl Exec {
    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<()> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Output(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&go_print(&v));
                    }
                }
                Node::If { pipe, then, otherwise } => {
                    let v = self.pipe(pipe, dot)?;
                    self.nodes(if truthy(&v) { then } else { otherwise }, dot)?;
                }
                Node::With { pipe, then, otherwise } => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    if truthy(&v) {
                        self.nodes(then, &v)?;
                    } else {
                        self.nodes(otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range { pipe, body, otherwise } => self.range(pipe, body, otherwise, dot)?,
            }
        }
        Ok(())
    }

    fn range(&mut self, pipe: &Pipe, body: &[Node], otherwise: &[Node], dot: &Value) -> Result<()> {
        let mark = self.vars.len();
        // The declared names get each key and element, not the whole value.
        let v = self.eval_cmds(&pipe.cmds, dot)?;
        let items: Vec<(Value, Value)> = match v {
            Value::Array(a) => a.into_iter().enumerate().map(|(i, x)| (Value::from(i), x)).collect(),
            Value::Object(o) => o.into_iter().map(|(k, x)| (Value::String(k), x)).collect(),
            Value::Null => Vec::new(),
            Value::Number(n) if n.as_u64().is_some() => (0..n.as_u64().unwrap_or(0)).map(|i| (Value::from(i), Value::from(i))).collect(),
            other => return exec_err(format!("range can't iterate over {}", go_print(&other))),
        };
        if items.is_empty() {
            return self.nodes(otherwise, dot);
        }
        for (k, x) in items {
            match pipe.decl.as_slice() {
                [] => {}
                [e] => self.vars.push((e.clone(), x.clone())),
                [i, e, ..] => {
                    self.vars.push((i.clone(), k));
                    self.vars.push((e.clone(), x.clone()));
                }
            }
            self.nodes(body, &x)?;
            self.vars.truncate(mark);
        }
        Ok(())
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value> {
        if p.cmds.is_empty() {
            return Ok(Value::Null);
        }
        let v = self.eval_cmds(&p.cmds, dot)?;
        for name in &p.decl {
            self.vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn eval_cmds(&mut self, cmds: &[Vec<Term>], dot: &Value) -> Result<Value> {
        let mut last: Option<Value> = None;
        for cmd in cmds {
            last = Some(self.cmd(cmd, dot, last)?);
        }
        Ok(last.unwrap_or_default())
    }

    fn cmd(&mut self, terms: &[Term], dot: &Value, piped: Option<Value>) -> Result<Value> {
        let (first, rest) = terms.split_first().expect("parse_pipe refuses empty commands");
        if let Term::Func(name) = first {
            let mut args = rest.iter().map(|t| self.term(t, dot)).collect::<Result<Vec<_>>>()?;
            args.extend(piped);
            return call(name, args);
        }
        if !rest.is_empty() || piped.is_some() {
            return exec_err("can't give argument to non-function");
        }
        self.term(first, dot)
    }

    fn term(&mut self, t: &Term, dot: &Value) -> Result<Value> {
        match t {
            Term::Field(p) => field(dot.clone(), p, &format!(".{}", p.join("."))),
            Term::Var(name, p) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return exec_err(format!("undefined variable: {name}"));
                };
                field(v.clone(), p, name)
            }
            Term::Lit(v) => Ok(v.clone()),
            Term::Func(name) => call(name, Vec::new()),
            Term::Sub(p, chain) => {
                let mark = self.vars.len();
                let v = self.pipe(p, dot);
                self.vars.truncate(mark);
                if chain.is_empty() {
                    v
                } else {
                    field(v?, chain, &format!(".{}", chain.join(".")))
                }
            }
        }
    }
}

fn text(v: &Value) -> String {
    go_print(v)
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<()> {
    if args.len() != n {
        return exec_err(format!("wrong number of args for {name}: want {n} got {}", args.len()));
    }
    Ok(())
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&text(a));
    }
    out
}

fn printf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(verb @ ('s' | 'd' | 'v' | 'q')) => match args.next() {
                Some(a) if verb == 'q' => out.push_str(&format!("{:?}", text(a))),
                Some(a) => out.push_str(&text(a)),
                None => out.push_str(&format!("%!{verb}(MISSING)")),
            },
            Some(other) => out.push_str(&format!("%!{other}(unsupported)")),
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

fn call(name: &str, args: Vec<Value>) -> Result<Value> {
    let s = |i: usize| args.get(i).map(text).unwrap_or_default();
    Ok(match name {
        "json" => {
            arity(name, &args, 1)?;
            Value::String(args[0].to_string())
        }
        "join" => {
            arity(name, &args, 2)?;
            let Value::Array(items) = &args[0] else {
                return exec_err(format!("join: {} is not a list", text(&args[0])));
            };
            Value::String(items.iter().map(text).collect::<Vec<_>>().join(&s(1)))
        }
        "split" => {
            arity(name, &args, 2)?;
            Value::Array(s(0).split(s(1).as_str()).map(|p| Value::String(p.to_string())).collect())
        }
        "upper" => {
            arity(name, &args, 1)?;
            Value::String(s(0).to_uppercase())
        }
        "lower" => {
            arity(name, &args, 1)?;
            Value::String(s(0).to_lowercase())
        }
        "title" => {
            arity(name, &args, 1)?;
            let mut out = String::new();
            let mut start = true;
            for c in s(0).chars() {
                out.extend(if start { c.to_uppercase().collect::<Vec<_>>() } else { vec![c] });
                start = c.is_whitespace();
            }
            Value::String(out)
        }
        "truncate" => {
            arity(name, &args, 2)?;
            let n = args[1].as_u64().unwrap_or(0) as usize;
            Value::String(s(0).chars().take(n).collect())
        }
        "pad" => {
            arity(name, &args, 3)?;
            let (l, r) = (args[1].as_u64().unwrap_or(0) as usize, args[2].as_u64().unwrap_or(0) as usize);
            Value::String(format!("{}{}{}", " ".repeat(l), s(0), " ".repeat(r)))
        }
        "println" => Value::String(format!("{}\n", args.iter().map(text).collect::<Vec<_>>().join(" "))),
        "print" => Value::String(sprint(&args)),
        "printf" => {
            let Some((f, rest)) = args.split_first() else {
                return exec_err("wrong number of args for printf: want at least 1 got 0");
            };
            Value::String(printf(&text(f), rest))
        }
        "len" => {
            arity(name, &args, 1)?;
            Value::from(match &args[0] {
                Value::String(x) => x.len(),
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::Null => 0,
                other => return exec_err(format!("len of {}", text(other))),
            })
        }
        "index" => {
            let Some((mut v, keys)) = args.split_first().map(|(v, k)| (v.clone(), k)) else {
                return exec_err("wrong number of args for index: want at least 1 got 0");
            };
            for k in keys {
                v = match (v, k) {
                    (Value::Array(a), Value::Number(n)) => match n.as_u64().and_then(|i| a.get(i as usize)) {
                        Some(x) => x.clone(),
                        None => return exec_err(format!("error calling index: index out of range: {n}")),
                    },
                    (Value::Object(o), Value::String(key)) => o.get(key).cloned().unwrap_or_default(),
                    (Value::Null, _) => Value::Null,
                    (other, _) => return exec_err(format!("can't index item of type {}", text(&other))),
                };
            }
            v
        }
        "not" => {
            arity(name, &args, 1)?;
            Value::Bool(!truthy(&args[0]))
        }
        "and" => args.iter().find(|a| !truthy(a)).or(args.last()).cloned().unwrap_or_default(),
        "or" => args.iter().find(|a| truthy(a)).or(args.last()).cloned().unwrap_or_default(),
        "eq" => {
            let Some((first, rest)) = args.split_first() else {
                return exec_err("missing argument for comparison");
            };
            Value::Bool(rest.iter().any(|b| compare(first, b) == Some(std::cmp::Ordering::Equal)))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(name, &args, 2)?;
            let Some(o) = compare(&args[0], &args[1]) else {
                return exec_err(format!(
                    "incompatible types for comparison: {} and {}",
                    text(&args[0]),
                    text(&args[1])
                ));
            };
            use std::cmp::Ordering::*;
            Value::Bool(match name {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        other => return exec_err(format!("function {other:?} not defined")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn fields_nested_fields_and_json() {
        let v = json!({"Name": "/web", "State": {"Status": "running", "ExitCode": 3, "Running": true},
            "Config": {"Cmd": ["sh", "-c", "x y"], "Labels": {"b": "2", "a": "1"}, "Entrypoint": null}});
        assert_eq!(render("{{.Name}} is {{.State.Status}}", &v), "/web is running");
        assert_eq!(render("{{.State.ExitCode}} {{.State.Running}}", &v), "3 true");
        assert_eq!(render("{{.Config.Cmd}} {{.Config.Labels}}", &v), "[sh -c x y] map[a:1 b:2]");
        assert_eq!(render("{{json .Config.Labels}}", &v), r#"{"a":"1","b":"2"}"#);
        assert_eq!(render("{{json .State}}", &v), r#"{"ExitCode":3,"Running":true,"Status":"running"}"#);
        assert_eq!(render("{{.Config.Entrypoint}}", &v), "<no value>");
        assert_eq!(render("{{ . }}", &json!("dot")), "dot");
        assert_eq!(render("plain text\tonly", &v), "plain text\tonly");
        let e = Template::parse("{{.Config.Foo}}").unwrap().render(&v).unwrap_err();
        assert!(e.to_string().contains(r#"map has no entry for key "Foo""#), "{e}");
        assert!(Template::parse("{{.Name").is_err());
        assert!(Template::parse("{{if .Name}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        let n = json!({"IPAM": {"Config": [{"Subnet": "10.0.0.0/24"}]}});
        assert_eq!(render("{{(index .IPAM.Config 0).Subnet}}", &n), "10.0.0.0/24");
        assert_eq!(render("{{len (index .IPAM.Config 0)}}", &n), "1");
    }

    #[test]
    fn pipelines_functions_and_blocks() {
        let v =
            json!({"Names": "web", "Labels": {"a": "1", "b": "2"}, "Ports": [], "Mounts": [{"Source": "/s"}, {"Source": "/t"}], "N": 3});
        assert_eq!(render("{{.Names | upper}}", &v), "WEB");
        assert_eq!(render("{{upper .Names}}-{{title \"hello world\"}}", &v), "WEB-Hello World");
        assert_eq!(render("{{range .Mounts}}{{.Source}};{{end}}", &v), "/s;/t;");
        assert_eq!(render("{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}", &v), "a=1 b=2 ");
        assert_eq!(render("{{range .Ports}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(render("{{if eq .Names \"web\"}}yes{{else}}no{{end}}", &v), "yes");
        assert_eq!(render("{{if gt .N 5}}big{{else if gt .N 2}}mid{{else}}small{{end}}", &v), "mid");
        assert_eq!(render("{{with .Labels}}{{.a}}{{end}}", &v), "1");
        assert_eq!(render("{{join (split \"a,b,c\" \",\") \"-\"}}", &v), "a-b-c");
        assert_eq!(
            render("{{len .Mounts}} {{index .Mounts 1 \"Source\"}} {{index .Labels \"b\"}}", &v),
            "2 /t 2"
        );
        assert_eq!(render("{{printf \"%s=%d%%\" .Names .N}}", &v), "web=3%");
        assert_eq!(render("{{truncate .Names 2}}|{{pad .Names 1 2}}|", &v), "we| web  |");
        assert_eq!(render("a {{- .Names -}} b\n{{- \"c\"}}", &v), "awebbc");
        assert_eq!(render("{{$.Names}}{{/* comment */}}", &v), "web");
        assert_eq!(render("{{$x := .N}}{{$x}}", &v), "3");
        assert!(Template::parse("{{nosuch .Names}}").unwrap().render(&v).is_err());
        assert!(Template::parse("{{.Names .N}}").unwrap().render(&v).is_err());
    }
}
