/// What an Elasticsearch error body (`{"error": {"type", "reason", "root_cause": […]}, "status": N}`, or the short
/// `{"error": "text"}`) says went wrong, in the words a person needs: the first root cause's reason when it has one
/// (`failed to parse date field [yesterday] …` rather than the search's `all shards failed`), else the reason.
public enum ElasticsearchErrorBody {
    public static func reason(_ body: JSON) -> String? {
        let error = body["error"]
        if let cause = error?["root_cause"]?[0]?["reason"]?.stringValue, !cause.isEmpty { return cause }
        // Quarry's web API (`/api/v1`) says it in `message`.
        return error?["reason"]?.stringValue ?? error?["message"]?.stringValue ?? error?.stringValue
    }
}
