use hoist_dockerfile::convert::*;
use hoist_frontend_sdk::types::Platform;
struct R;
impl ImageResolver for R {
    fn resolve(&mut self, reference: &str, _p: Option<&Platform>) -> Result<ResolvedImage, String> {
        Ok(ResolvedImage { canonical_ref: format!("docker.io/library/{reference}"), digest: "sha256:aaaa".into(),
          config: r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin:/bin"],"WorkingDir":"/w","Cmd":["sh"],"OnBuild":["RUN echo onbuild"]},"rootfs":{"type":"layers","diff_ids":["sha256:1"]},"history":[{"created_by":"base"}]}"#.into() })
    }
}
#[test]
fn dump() {
    let df = std::env::var("DF").unwrap();
    let df = std::fs::read_to_string(df).unwrap();
    let opts = ConvertOptions { filename: "Dockerfile".into(), ..Default::default() };
    match convert(&df, &opts, &mut R) {
        Ok(c) => { println!("{:#?}", c.state.definition()); println!("{}", c.image.to_json()); }
        Err(e) => println!("ERR {e:?}"),
    }
}
