//! Validating what the probe prints against its checked-in JSON Schemas,
//! with an independent validator (Python's jsonschema, from PyPI).

use std::path::Path;
use std::process::Command;

/// Validate the first line of `report` against `schema/<schema>`; the
/// validator's words on failure.
pub fn validate(schema: &str, report: &Path) -> Result<(), String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let tools = Command::new(format!("{root}/scripts/python-tools"))
        .output()
        .map_err(|err| format!("python tools: {err}"))?;
    let python = format!("{}/python", String::from_utf8_lossy(&tools.stdout).trim());
    let check = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        report = json.loads(open(sys.argv[2]).readline())\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)\n\
        print('valid')";
    let checked = Command::new(python)
        .args(["-c", check, &format!("{root}/schema/{schema}")])
        .arg(report)
        .output()
        .map_err(|err| format!("run the validator: {err}"))?;
    let said = String::from_utf8_lossy(&checked.stdout).to_string()
        + &String::from_utf8_lossy(&checked.stderr);
    if checked.status.success() && said.contains("valid") {
        Ok(())
    } else {
        Err(said)
    }
}
