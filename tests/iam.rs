//! The IAM documents in deploy/iam/ have the shape IAM accepts, use no
//! wildcard action, and grant exactly the describe and list actions the
//! code in src/aws calls: a new call without its grant fails here, not in
//! a customer's account. The IAM authentication documents (the ElastiCache
//! user and user group, the two connect policies) are checked against
//! botocore's model and against what the probe sends.

mod rig;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn document(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/iam")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// Every action a document allows, after checking each statement's shape.
fn actions(doc: &Value, name: &str) -> BTreeSet<String> {
    assert_eq!(doc["Version"], "2012-10-17", "{name}");
    let statements = doc["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: Statement"));
    let mut all = BTreeSet::new();
    for statement in statements {
        assert_eq!(statement["Effect"], "Allow", "{name}: {statement}");
        assert!(
            statement["Resource"].is_string() || statement["Principal"].is_object(),
            "{name}: a Resource or a Principal: {statement}"
        );
        let listed: Vec<String> = match &statement["Action"] {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .map(|a| a.as_str().expect("action").to_string())
                .collect(),
            other => panic!("{name}: Action {other}"),
        };
        for action in listed {
            assert!(!action.contains('*'), "{name}: wildcard action {action}");
            let (service, verb) = action
                .split_once(':')
                .unwrap_or_else(|| panic!("{name}: {action}"));
            assert!(
                ["ec2", "elasticloadbalancing", "route53", "sts"].contains(&service),
                "{name}: {action}"
            );
            assert!(
                verb.starts_with("Describe")
                    || verb.starts_with("List")
                    || verb.starts_with("Get")
                    || verb.starts_with("Search")
                    || action == "sts:AssumeRole",
                "{name}: {action} is not read-only"
            );
            all.insert(action);
        }
    }
    all
}

/// Every `.rs` file under `dir`, in its subdirectories too (the credential
/// chain lives in src/aws/credentials/).
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The actions src/aws calls, by the names it sends, each with the IAM
/// prefix of the service whose API has it (botocore's models of EC2, ELBv2
/// and Route 53 say which; a name in none of them fails here).
fn called() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for path in rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws")) {
        let text = std::fs::read_to_string(path).unwrap();
        for piece in text.split('"').skip(1).step_by(2) {
            // A verb, then the next word (`ListHostedZones`, not `Listeners`).
            let read = ["Describe", "List", "Get", "Search"].iter().any(|v| {
                piece
                    .strip_prefix(v)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            });
            if read
                && piece.chars().all(|c| c.is_ascii_alphanumeric())
                && piece != "GetCallerIdentity"
            {
                names.insert(piece.to_string());
            }
        }
    }
    let apis = [
        ("ec2", "ec2"),
        ("elasticloadbalancing", "elbv2"),
        ("route53", "route53"),
    ]
    .map(|(prefix, model)| (prefix, botocore_operations(model)));
    let mut found = BTreeSet::new();
    for name in names {
        let api = apis
            .iter()
            .find(|(_, operations)| operations.contains(&name));
        let (prefix, _) = api.unwrap_or_else(|| panic!("{name} is in no API botocore knows"));
        found.insert(format!("{prefix}:{name}"));
    }
    found
}

#[test]
fn the_task_role_grants_exactly_what_the_code_calls() {
    let mut granted = actions(&document("task-role-policy.json"), "task-role-policy.json");
    assert!(
        granted.remove("sts:AssumeRole"),
        "the task role assumes the peer and network roles"
    );
    assert_eq!(granted, called());
}

#[test]
fn the_peer_role_reads_its_side_and_trusts_only_the_task_role() {
    let granted = actions(&document("peer-role-policy.json"), "peer-role-policy.json");
    let source_only = ["ec2:DescribeVpcAttribute", "route53:ListHostedZonesByVPC"];
    let wanted: BTreeSet<String> = called()
        .into_iter()
        .filter(|a| !source_only.contains(&a.as_str()))
        .collect();
    assert_eq!(granted, wanted);
    let trust = document("peer-role-trust.json");
    assert_eq!(
        actions(&trust, "peer-role-trust.json"),
        BTreeSet::from(["sts:AssumeRole".to_string()])
    );
    let principal = trust["Statement"][0]["Principal"]["AWS"].as_str().unwrap();
    let task_definition: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("task-definition.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        task_definition["taskRoleArn"], principal,
        "the trust names the task definition's task role"
    );
    assert!(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"].is_string());
}

/// The network account's role reads the transit gateways and nothing
/// else: exactly the calls of src/aws/fetch/transit.rs; it trusts the
/// task role as the peer role does.
#[test]
fn the_network_role_reads_only_the_gateways() {
    let granted = actions(
        &document("network-role-policy.json"),
        "network-role-policy.json",
    );
    let transit: BTreeSet<String> = called()
        .into_iter()
        .filter(|a| a.contains("TransitGateway"))
        .collect();
    assert_eq!(granted, transit);
    assert_eq!(transit.len(), 5, "{transit:?}");
    assert_eq!(
        document("network-role-trust.json"),
        document("peer-role-trust.json")
    );
}

/// The ElastiCache user and user group documents are valid input to
/// botocore's model of CreateUser / CreateUserGroup (as
/// `aws elasticache create-user --cli-input-json file://...` reads them).
fn valid_elasticache_input(operation: &str, name: &str) {
    let python = rig::moto::venv_bin()
        .expect("scripts/python-tools")
        .join("python");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/iam")
        .join(name);
    let script = format!(
        "import json, botocore.session\nfrom botocore.validate import ParamValidator\n\
         shape = botocore.session.get_session().get_service_model('elasticache').operation_model('{operation}').input_shape\n\
         report = ParamValidator().validate(json.load(open({path:?})), shape)\n\
         print(report.generate_report()) if report.has_errors() else None\n\
         raise SystemExit(1 if report.has_errors() else 0)\n",
        path = path.display().to_string()
    );
    let output = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name} is not valid {operation} input: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The commands the redis check and the Redis drill send, as ACL rules.
const PROBE_COMMANDS: [&str; 10] = [
    "+ping",
    "+info",
    "+role",
    "+cluster|info",
    "+set",
    "+incr",
    "+expire",
    "+mget",
    "+cluster|slots",
    "+cluster|keyslot",
];

#[test]
fn the_elasticache_user_is_an_iam_user_the_probe_can_work_as() {
    valid_elasticache_input("CreateUser", "elasticache-user.json");
    valid_elasticache_input("CreateUserGroup", "elasticache-user-group.json");
    let user = document("elasticache-user.json");
    assert_eq!(user["AuthenticationMode"]["Type"], "iam");
    assert_eq!(
        user["UserId"], user["UserName"],
        "IAM needs the user id to equal the name"
    );
    let access = user["AccessString"].as_str().unwrap();
    let rules: Vec<&str> = access.split_whitespace().collect();
    assert_eq!(rules.first(), Some(&"on"));
    let missing: Vec<&&str> = PROBE_COMMANDS
        .iter()
        .filter(|c| !rules.contains(c))
        .collect();
    assert!(missing.is_empty(), "the access string lacks {missing:?}");
    let group = document("elasticache-user-group.json");
    let members = group["UserIds"].as_array().unwrap();
    assert!(
        members.contains(&user["UserId"]),
        "the group holds the probe's user"
    );
    assert!(
        members.contains(&"default".into()),
        "ElastiCache groups need the default user"
    );
}

/// A policy's one statement: its action and resources.
fn connect_statement(name: &str) -> (String, Vec<String>) {
    let doc = document(name);
    assert_eq!(doc["Version"], "2012-10-17");
    let statements = doc["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{name}");
    let statement = &statements[0];
    assert_eq!(statement["Effect"], "Allow");
    let resources = match &statement["Resource"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect(),
        other => panic!("{name}: Resource {other}"),
    };
    (statement["Action"].as_str().unwrap().to_string(), resources)
}

#[test]
fn the_connect_policies_name_the_cache_the_user_and_the_database_user() {
    let (action, resources) = connect_statement("elasticache-connect-policy.json");
    assert_eq!(action, "elasticache:Connect");
    let user = document("elasticache-user.json");
    let user_arn = format!(":user:{}", user["UserId"].as_str().unwrap());
    assert!(resources
        .iter()
        .any(|r| r.starts_with("arn:aws:elasticache:") && r.ends_with(&user_arn)));
    assert!(resources.iter().any(|r| {
        r.starts_with("arn:aws:elasticache:")
            && (r.contains(":replicationgroup:") || r.contains(":serverlesscache:"))
    }));
    let (action, resources) = connect_statement("rds-connect-policy.json");
    assert_eq!(action, "rds-db:connect");
    let arn = &resources[0];
    let (prefix, user) = arn.rsplit_once('/').unwrap();
    assert!(
        prefix.starts_with("arn:aws:rds-db:") && prefix.contains(":dbuser:"),
        "{arn}"
    );
    assert!(!user.is_empty() && !user.contains('*'), "{arn}");
}

/// The ECS and CloudWatch Logs actions src/gate sends, by the names in its
/// calls (`call(account, "X"`, `json(Service::Ecs, "X"`, ...).
fn gate_called() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for path in rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gate")) {
        let text = std::fs::read_to_string(path).unwrap();
        for (marker, service) in [
            ("call(account, \"", "ecs"),
            ("Service::Ecs, \"", "ecs"),
            ("Service::Logs, \"", "logs"),
        ] {
            for piece in text.split(marker).skip(1) {
                let action: String = piece
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                found.insert(format!("{service}:{action}"));
            }
        }
    }
    found
}

/// The operations botocore's model of `service` has.
fn botocore_operations(service: &str) -> BTreeSet<String> {
    let python = rig::moto::venv_bin()
        .expect("scripts/python-tools")
        .join("python");
    let script = format!(
        "import botocore.session\nprint('\\n'.join(botocore.session.get_session().get_service_model('{service}').operation_names))"
    );
    let output = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The gate caller's policy grants exactly the ECS and Logs calls the gate
/// makes (each a real operation of botocore's model), and passes only the
/// task definition's two roles, only to ECS tasks.
#[test]
fn the_gate_policy_grants_exactly_what_the_gate_calls() {
    let doc = document("gate-policy.json");
    let statements = doc["Statement"].as_array().unwrap();
    let mut granted = BTreeSet::new();
    for statement in statements {
        assert_eq!(statement["Effect"], "Allow");
        let listed: Vec<String> = match &statement["Action"] {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
            other => panic!("Action {other}"),
        };
        for action in listed {
            assert!(!action.contains('*'), "wildcard action {action}");
            granted.insert(action);
        }
    }
    assert!(
        granted.remove("iam:PassRole"),
        "the gate passes the task's roles"
    );
    assert_eq!(granted, gate_called());
    let ecs = botocore_operations("ecs");
    let logs = botocore_operations("logs");
    for action in &granted {
        let (service, operation) = action.split_once(':').unwrap();
        let model = if service == "ecs" { &ecs } else { &logs };
        assert!(
            model.contains(operation),
            "{action} is no operation of botocore's {service} model"
        );
    }
    let pass = statements
        .iter()
        .find(|s| s["Action"] == "iam:PassRole")
        .unwrap();
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );
    let task_definition: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("task-definition.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let roles: BTreeSet<&str> = pass["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let wanted: BTreeSet<&str> = ["taskRoleArn", "executionRoleArn"]
        .iter()
        .filter_map(|key| task_definition[key].as_str())
        .collect();
    assert_eq!(roles, wanted);
    let run = statements
        .iter()
        .find(|s| s["Action"] == "ecs:RunTask")
        .unwrap();
    let family = task_definition["family"].as_str().unwrap();
    assert!(run["Resource"]
        .as_str()
        .unwrap()
        .ends_with(&format!("task-definition/{family}:*")));
}
