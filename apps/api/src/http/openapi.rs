//! Responses every operation can give for the same reasons, documented once:
//! the extractors' and middleware's answers (a body that is not JSON, a path
//! or query that does not parse, a body over the limit, the rate limit, a
//! dependency away or the request timing out). Each route documents only its
//! own outcomes; this adds the rest, so that every status the server can send
//! is in the document (checked by `just api-fuzz`).

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};

fn problem(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build(),
    )
}

fn add(operation: &mut Operation, status: u16, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| problem(description));
}

fn document(operation: &mut Operation) {
    let takes = |place: &ParameterIn| {
        operation.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => &p.parameter_in == place,
            RefOr::Ref(_) => false,
        })
    };
    let (path, query) = (takes(&ParameterIn::Path), takes(&ParameterIn::Query));
    let body = operation.request_body.is_some();
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    if path || query {
        add(
            operation,
            400,
            "a path or query parameter that does not parse (`invalid_path`, `invalid_query`)",
        );
    }
    if query {
        add(
            operation,
            422,
            "a query value out of range (`validation_failed`)",
        );
    }
    if body {
        add(operation, 400, "a body that is not JSON (`malformed_json`)");
        add(
            operation,
            413,
            "a body over the size limit (`body_too_large`)",
        );
        add(
            operation,
            415,
            "a body not sent as `application/json` (`unsupported_media_type`)",
        );
        add(
            operation,
            422,
            "a body that does not match the schema (`invalid_body`) or fails validation",
        );
    }
    if secured {
        add(operation, 401, "no or bad credentials");
        add(
            operation,
            429,
            "over the plan's request rate (`rate_limited`; see `Retry-After`)",
        );
    }
    add(
        operation,
        503,
        "a dependency (the database, the rate-limit store) is unavailable, the request timed out, or the instance is draining",
    );
}

/// Problem bodies are sent as `application/problem+json`: a route that
/// declared one as `application/json` is corrected.
fn problems_as_problem_json(operation: &mut Operation) {
    for response in operation.responses.responses.values_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let is_problem = matches!(
            response.content.get("application/json"),
            Some(RefOr::T(Content { schema: Some(RefOr::Ref(r)), .. }))
                if r.ref_location.ends_with("/Problem")
        );
        if is_problem && let Some(content) = response.content.shift_remove("application/json") {
            response
                .content
                .insert("application/problem+json".to_owned(), content);
        }
    }
}

/// Adds the shared responses to every operation of `openapi`.
pub fn document_common_responses(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            problems_as_problem_json(operation);
            document(operation);
        }
    }
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, PathItem};
    use utoipa::openapi::request_body::RequestBody;
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{HttpMethod, OpenApiBuilder, PathsBuilder};

    use super::*;

    fn statuses(openapi: &OpenApi, path: &str) -> Vec<String> {
        let item = &openapi.paths.paths[path];
        let operation = item
            .get
            .as_ref()
            .or(item.post.as_ref())
            .expect("an operation");
        operation.responses.responses.keys().cloned().collect()
    }

    #[test]
    fn each_operation_gets_the_responses_its_inputs_can_cause() {
        let bare = OperationBuilder::new().response("200", Response::new("ok"));
        let with_body = OperationBuilder::new()
            .request_body(Some(RequestBody::new()))
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
            .response("201", Response::new("created"))
            .response("422", Response::new("the route's own wording"));
        let with_path = OperationBuilder::new()
            .parameter(
                ParameterBuilder::new()
                    .name("id")
                    .parameter_in(ParameterIn::Path),
            )
            .response("200", Response::new("ok"));
        let with_query = OperationBuilder::new()
            .parameter(
                ParameterBuilder::new()
                    .name("limit")
                    .parameter_in(ParameterIn::Query),
            )
            .response("200", Response::new("ok"))
            .response(
                "404",
                ResponseBuilder::new()
                    .description("gone")
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("Problem"))),
                    )
                    .build(),
            );
        let mut openapi = OpenApiBuilder::new()
            .paths(
                PathsBuilder::new()
                    .path("/healthz", PathItem::new(HttpMethod::Get, bare))
                    .path("/v1/things", PathItem::new(HttpMethod::Post, with_body))
                    .path("/v1/things/{id}", PathItem::new(HttpMethod::Get, with_path))
                    .path("/v1/search", PathItem::new(HttpMethod::Get, with_query)),
            )
            .build();
        document_common_responses(&mut openapi);

        assert_eq!(statuses(&openapi, "/healthz"), ["200", "503"]);
        assert_eq!(
            statuses(&openapi, "/v1/things"),
            ["201", "400", "401", "413", "415", "422", "429", "503"]
        );
        assert_eq!(statuses(&openapi, "/v1/things/{id}"), ["200", "400", "503"]);
        assert_eq!(
            statuses(&openapi, "/v1/search"),
            ["200", "400", "404", "422", "503"]
        );
        // A problem declared as plain JSON is corrected.
        let search = openapi.paths.paths["/v1/search"].get.as_ref().expect("get");
        let RefOr::T(not_found) = &search.responses.responses["404"] else {
            panic!("inline")
        };
        assert_eq!(
            not_found.content.keys().collect::<Vec<_>>(),
            ["application/problem+json"]
        );
        // A route's own description of a status is kept.
        let post = openapi.paths.paths["/v1/things"]
            .post
            .as_ref()
            .expect("post");
        let RefOr::T(kept) = &post.responses.responses["422"] else {
            panic!("inline")
        };
        assert_eq!(kept.description, "the route's own wording");
    }
}
