import QuarryElasticsearchAPI

/// A request to the API in process, as a client would send it: method, target (path and query) and body text.
func request(_ method: ESRequest.Method, _ target: String, _ body: String = "") throws -> ESRequest {
    try ESRequest(method: method, target: target, body: Array(body.utf8))
}
