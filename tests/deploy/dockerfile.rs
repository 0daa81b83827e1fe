//! A Dockerfile parser just large enough for tests/deploy.rs, and the checks it makes
//! on deploy/Dockerfile: no Docker engine runs where the tests run, so the file is
//! checked for structure (pinned stages, non-root numeric user, health check, ports,
//! listen addresses), never built.

pub const S3_PORT: &str = "8333";
pub const ADMIN_PORT: &str = "9333";

/// One instruction, continuation lines joined, comments dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub args: String,
}

#[derive(Debug)]
pub struct Stage {
    pub image: String,
    pub name: Option<String>,
    pub body: Vec<Instruction>,
}

pub fn parse_dockerfile(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        // Docker drops comment lines even inside a continued instruction.
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_none()) {
            continue;
        }
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        let continued = trimmed.ends_with('\\');
        acc.push_str(trimmed.trim_end_matches('\\').trim_end());
        acc.push(' ');
        if continued {
            pending = Some((start, acc));
            continue;
        }
        let acc = acc.trim();
        if acc.is_empty() {
            continue;
        }
        let (keyword, args) = acc.split_once(char::is_whitespace).unwrap_or((acc, ""));
        out.push(Instruction {
            line: start,
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
        });
    }
    out
}

pub fn stages(instructions: &[Instruction]) -> Result<Vec<Stage>, String> {
    let mut stages: Vec<Stage> = Vec::new();
    for ins in instructions {
        if ins.keyword == "FROM" {
            let words: Vec<&str> = ins
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let (image, name) = match words.as_slice() {
                [image] => (*image, None),
                [image, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    (*image, Some(name.to_string()))
                }
                _ => return Err(format!("line {}: cannot parse FROM {}", ins.line, ins.args)),
            };
            stages.push(Stage {
                image: image.to_string(),
                name,
                body: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.body.push(ins.clone());
        } else if ins.keyword != "ARG" {
            return Err(format!(
                "line {}: {} before any FROM",
                ins.line, ins.keyword
            ));
        }
    }
    Ok(stages)
}

/// Every stage starts from a pinned image, names are unique, `COPY --from` names an
/// earlier stage, and the builder uses the toolchain of rust-toolchain.toml with a
/// locked release build.
pub fn check_build_stages(stages: &[Stage], toolchain: &str) -> Result<(), String> {
    if stages.len() < 2 {
        return Err(format!(
            "{} stage(s); expected builder + runtime",
            stages.len()
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for stage in stages {
        let tag = stage
            .image
            .rsplit_once(['@', ':'])
            .map(|(_, t)| t)
            .filter(|t| !t.contains('/'));
        match tag {
            None => return Err(format!("FROM {} has no tag or digest", stage.image)),
            Some("latest") => return Err(format!("FROM {} is not pinned", stage.image)),
            Some(_) => {}
        }
        for ins in &stage.body {
            if let Some(from) = ins
                .args
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--from="))
                && !seen.contains(&from)
            {
                return Err(format!(
                    "line {}: COPY --from={from}: no earlier stage",
                    ins.line
                ));
            }
        }
        if let Some(name) = &stage.name {
            if seen.contains(&name.as_str()) {
                return Err(format!("stage name {name} used twice"));
            }
            seen.push(name);
        }
    }
    let builder = &stages[0];
    if !builder.image.starts_with(&format!("rust:{toolchain}-")) {
        return Err(format!(
            "builder FROM {} is not the rust-toolchain.toml release {toolchain}",
            builder.image
        ));
    }
    let builds = builder
        .body
        .iter()
        .any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked"));
    if !builds {
        return Err("builder has no `cargo build --release --locked`".into());
    }
    Ok(())
}

/// The final stage runs as a numeric non-root user, listens on all interfaces, exposes
/// both ports, probes /healthz with a tool it installs, and runs sealgate in exec form.
pub fn check_runtime_stage(stage: &Stage) -> Result<(), String> {
    let all = |kw: &'static str| stage.body.iter().filter(move |i| i.keyword == kw);
    let user = all("USER").next_back().ok_or("final stage has no USER")?;
    let uid = user.args.split(':').next().unwrap_or_default();
    if uid == "root" || uid == "0" || uid.parse::<u32>().is_err() {
        return Err(format!(
            "line {}: USER {} is root or not numeric (Kubernetes runAsNonRoot needs a numeric uid)",
            user.line, user.args
        ));
    }
    let exposed: Vec<&str> = all("EXPOSE")
        .flat_map(|i| i.args.split_whitespace())
        .collect();
    for port in [S3_PORT, ADMIN_PORT] {
        if !exposed.iter().any(|p| p.trim_end_matches("/tcp") == port) {
            return Err(format!("port {port} not in EXPOSE"));
        }
    }
    let env: Vec<&str> = all("ENV").flat_map(|i| i.args.split_whitespace()).collect();
    for want in [
        format!("SEALGATE_SERVER__LISTEN=0.0.0.0:{S3_PORT}"),
        format!("SEALGATE_SERVER__ADMIN_LISTEN=0.0.0.0:{ADMIN_PORT}"),
    ] {
        if !env.contains(&want.as_str()) {
            return Err(format!(
                "ENV lacks {want}: the listeners would be loopback only"
            ));
        }
    }
    let health = all("HEALTHCHECK")
        .next_back()
        .ok_or("final stage has no HEALTHCHECK")?;
    let probe = health
        .args
        .split_once("CMD")
        .map(|(_, cmd)| cmd)
        .ok_or("HEALTHCHECK has no CMD")?;
    if !probe.contains(&format!("127.0.0.1:{ADMIN_PORT}/healthz")) {
        return Err(format!(
            "HEALTHCHECK does not probe the admin /healthz: {probe}"
        ));
    }
    let tool = probe
        .trim()
        .trim_start_matches('[')
        .split([',', ' '])
        .next()
        .unwrap_or_default()
        .trim_matches('"');
    let installed = all("RUN").any(|i| {
        i.args.contains("apt-get install") && i.args.split_whitespace().any(|w| w == tool)
    });
    if tool.is_empty() || !installed {
        return Err(format!(
            "HEALTHCHECK tool {tool:?} is not installed in the runtime stage"
        ));
    }
    let entry = all("ENTRYPOINT").next_back().ok_or("no ENTRYPOINT")?;
    if entry.args != "[\"/usr/local/bin/sealgate\"]" {
        return Err(format!(
            "ENTRYPOINT {} is not the exec form of /usr/local/bin/sealgate (SIGTERM must reach it)",
            entry.args
        ));
    }
    Ok(())
}

pub fn check_dockerfile(text: &str, toolchain: &str) -> Result<(), String> {
    let stages = stages(&parse_dockerfile(text))?;
    check_build_stages(&stages, toolchain)?;
    check_runtime_stage(stages.last().ok_or("no stages")?)
}

/// The top-level paths a `.dockerignore` lets into the build context, for the one form
/// deploy/Dockerfile.dockerignore uses: `*` first, then `!name` lines. Anything else is
/// an error, so a rule this reader does not understand cannot pass unchecked.
pub fn dockerignore_allows(text: &str) -> Result<Vec<String>, String> {
    let mut rules = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    if rules.next() != Some("*") {
        return Err("the first rule is not `*`".into());
    }
    rules
        .map(|rule| match rule.strip_prefix('!') {
            Some(name) if !name.is_empty() && !name.contains(['/', '*', '?', '[']) => {
                Ok(name.to_string())
            }
            _ => Err(format!("rule {rule:?} is not `!name`")),
        })
        .collect()
}

/// The sources of the stage's context COPYs (not `COPY --from`), each checked to land
/// under its own name in the working directory (`COPY a b ./` or `COPY a ./a`), which
/// is all the context check below models.
pub fn context_copies(stage: &Stage) -> Result<Vec<String>, String> {
    let mut sources = Vec::new();
    for ins in stage.body.iter().filter(|i| i.keyword == "COPY") {
        let words: Vec<&str> = ins.args.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from=")) {
            continue;
        }
        let words: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
        let Some((dest, srcs)) = words.split_last() else {
            return Err(format!("line {}: COPY without paths", ins.line));
        };
        for src in srcs {
            let keeps_name = *dest == "./" || dest.trim_start_matches("./") == *src;
            if !keeps_name || src.contains('/') {
                return Err(format!(
                    "line {}: COPY {src} {dest} does not keep the path's name",
                    ins.line
                ));
            }
            sources.push(src.to_string());
        }
    }
    Ok(sources)
}

/// The repository scripts (`scripts/…`) a stage's RUN instructions call.
pub fn scripts_run(stage: &Stage) -> Vec<String> {
    stage
        .body
        .iter()
        .filter(|i| i.keyword == "RUN")
        .flat_map(|i| i.args.split_whitespace())
        .filter(|w| w.starts_with("scripts/"))
        .map(|w| w.trim_end_matches([';', ')']).to_string())
        .collect()
}
