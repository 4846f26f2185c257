mod rig;

#[test]
fn rig_starts() {
    let rig = rig::rig();
    assert_eq!(
        rig.psql(
            "app",
            "SELECT extname FROM pg_extension WHERE extname = 'postgis'"
        )
        .unwrap(),
        "postgis"
    );
}
