/// The API's OpenAPI 3 document, written by hand and served at `/v1/openapi.json`.
///
/// A test checks that every route of the router is documented here and every documented
/// operation is a route, so the two cannot drift apart silently.
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.0.3",
  "info": {
    "title": "recommender",
    "version": "1",
    "description": "A realtime recommender engine in static mode: recommendations for known users, anonymous sessions, similar items and text queries through named pipelines; feedback that changes the next answer; model management behind a bearer token. Errors are JSON: {\"error\": {\"status\", \"field\", \"problem\"}}."
  },
  "paths": {
    "/": {"get": {"summary": "The web page: recommendations, feedback, and the operator view", "operationId": "page",
      "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
    "/health/live": {"get": {"summary": "Liveness: 200 while the process serves HTTP", "operationId": "live",
      "responses": {"200": {"description": "live", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/health/ready": {"get": {"summary": "Readiness: 200 once every configured model is loaded, 503 before", "operationId": "ready",
      "responses": {"200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "503": {"description": "not ready", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/metrics": {"get": {"summary": "Prometheus text exposition: requests by route and status, latency histograms (seconds), queue depth, model versions, feedback memory", "operationId": "metrics",
      "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/v1/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
      "responses": {"200": {"description": "OpenAPI 3", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/v1/pipelines": {"get": {"summary": "The pipelines served, with their sources and k bounds", "operationId": "pipelines",
      "responses": {"200": {"description": "pipelines", "content": {"application/json": {"schema": {"type": "object"}}}}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/pipelines/{pipeline}/users/{user}/recommendations": {"get": {
      "summary": "Recommendations for a known user, with their recent feedback folded in and left out", "operationId": "userRecommendations",
      "parameters": [{"$ref": "#/components/parameters/Pipeline"}, {"name": "user", "in": "path", "required": true, "schema": {"type": "string"}},
                     {"$ref": "#/components/parameters/K"}, {"$ref": "#/components/parameters/Exclude"}],
      "responses": {"200": {"$ref": "#/components/responses/Recommendations"}, "400": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/pipelines/{pipeline}/sessions": {"post": {
      "summary": "Recommendations for an anonymous session: items or events folded in on the fly", "operationId": "session",
      "parameters": [{"$ref": "#/components/parameters/Pipeline"}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}}},
      "responses": {"200": {"$ref": "#/components/responses/Recommendations"}, "400": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/pipelines/{pipeline}/items/{item}/similar": {"get": {
      "summary": "Items similar to an item", "operationId": "similar",
      "parameters": [{"$ref": "#/components/parameters/Pipeline"}, {"name": "item", "in": "path", "required": true, "schema": {"type": "string"}},
                     {"$ref": "#/components/parameters/K"}, {"$ref": "#/components/parameters/Exclude"}],
      "responses": {"200": {"$ref": "#/components/responses/Recommendations"}, "400": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/pipelines/{pipeline}/search": {"post": {
      "summary": "A text query (pipelines over a text index)", "operationId": "search",
      "parameters": [{"$ref": "#/components/parameters/Pipeline"}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Search"}}}},
      "responses": {"200": {"$ref": "#/components/responses/Recommendations"}, "400": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/recommend": {"post": {
      "summary": "Any request through a named pipeline: a user, items, events and a text in one body", "operationId": "recommend",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Request"}}}},
      "responses": {"200": {"$ref": "#/components/responses/Recommendations"}, "400": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/batch": {"post": {
      "summary": "Several requests in one body, answered in order, each with its own status", "operationId": "batch",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "required": ["requests"],
        "properties": {"requests": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"$ref": "#/components/schemas/Request"}}}}}}},
      "responses": {"200": {"description": "one result per request", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/explain": {"post": {
      "summary": "Why a model recommends an item for a user or history. implicit ALS and item-kNN: one contribution per history item, adding up to the score (method contribution); BPR, biased MF, explicit ALS: the history items most similar to it (method similarity); popularity and text models have none (422)", "operationId": "explain",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "required": ["model", "item"],
        "properties": {"model": {"type": "string"}, "item": {"type": "string"}, "user": {"type": "string"},
                       "items": {"type": "array", "maxItems": 200, "items": {"type": "string"}},
                       "events": {"type": "array", "maxItems": 200, "items": {"$ref": "#/components/schemas/Event"}}}}}}},
      "responses": {"200": {"description": "score and contributions", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"},
                    "413": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/items/{item}": {"get": {
      "summary": "An item's metadata and the models that know it", "operationId": "item",
      "parameters": [{"name": "item", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "the item", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "404": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/feedback": {"post": {
      "summary": "A user's feedback: kept in memory (bounded), folded into and left out of their next recommendations", "operationId": "feedback",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Feedback"}}}},
      "responses": {"202": {"description": "accepted", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"}}}},
    "/v1/models": {"get": {
      "summary": "Stored models and versions: active and served version, kind, metrics, parameters, data fingerprint", "operationId": "models",
      "responses": {"200": {"description": "models", "content": {"application/json": {"schema": {"type": "object"}}}}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/models/{model}/versions": {"post": {
      "summary": "Upload a model file as a new version (bearer token)", "operationId": "upload", "security": [{"bearer": []}],
      "parameters": [{"$ref": "#/components/parameters/Model"}, {"name": "activate", "in": "query", "schema": {"type": "boolean"}},
                     {"name": "fingerprint", "in": "query", "schema": {"type": "string", "maxLength": 200}}],
      "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
      "responses": {"201": {"$ref": "#/components/responses/Version"}, "400": {"$ref": "#/components/responses/Error"},
                    "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"},
                    "413": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/models/{model}/train": {"post": {
      "summary": "Train a new version from a CSV of interactions, header user,item[,value] (bearer token)", "operationId": "train", "security": [{"bearer": []}],
      "parameters": [{"$ref": "#/components/parameters/Model"},
                     {"name": "kind", "in": "query", "schema": {"type": "string", "enum": ["als", "bpr", "popularity"]}},
                     {"name": "factors", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 512}},
                     {"name": "iterations", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                     {"name": "holdout", "in": "query", "schema": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "exclusiveMaximum": true, "maximum": 1}},
                     {"name": "activate", "in": "query", "schema": {"type": "boolean"}}],
      "requestBody": {"required": true, "content": {"text/csv": {"schema": {"type": "string"}}}},
      "responses": {"201": {"$ref": "#/components/responses/Version"}, "400": {"$ref": "#/components/responses/Error"},
                    "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"},
                    "413": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/models/{model}/activate": {"post": {
      "summary": "Verify a version and serve it; requests in flight finish on the version they started with (bearer token)", "operationId": "activate", "security": [{"bearer": []}],
      "parameters": [{"$ref": "#/components/parameters/Model"}],
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "required": ["version"],
        "properties": {"version": {"type": "integer", "minimum": 1}}}}}},
      "responses": {"200": {"$ref": "#/components/responses/Version"}, "400": {"$ref": "#/components/responses/Error"},
                    "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
    "/v1/models/{model}/rollback": {"post": {
      "summary": "Serve the previously active version again (bearer token)", "operationId": "rollback", "security": [{"bearer": []}],
      "parameters": [{"$ref": "#/components/parameters/Model"}],
      "responses": {"200": {"$ref": "#/components/responses/Version"}, "400": {"$ref": "#/components/responses/Error"},
                    "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}}
  },
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "parameters": {
      "Pipeline": {"name": "pipeline", "in": "path", "required": true, "schema": {"type": "string"}},
      "Model": {"name": "model", "in": "path", "required": true, "schema": {"type": "string"}},
      "K": {"name": "k", "in": "query", "description": "results wanted: 1 to the configured maximum and the catalog's size", "schema": {"type": "integer", "minimum": 1}},
      "Exclude": {"name": "exclude", "in": "query", "description": "comma-separated item ids never to return", "schema": {"type": "string"}}
    },
    "schemas": {
      "Event": {"type": "object", "additionalProperties": false, "required": ["item"],
        "properties": {"item": {"type": "string"}, "type": {"type": "string", "description": "view, like, cart, buy…"},
                       "weight": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "maximum": 1000000}, "time": {"type": "number", "description": "seconds since 1970"}}},
      "Session": {"type": "object", "additionalProperties": false,
        "properties": {"items": {"type": "array", "maxItems": 200, "items": {"type": "string"}},
                       "events": {"type": "array", "maxItems": 200, "items": {"$ref": "#/components/schemas/Event"}},
                       "k": {"type": "integer", "minimum": 1}, "exclude": {"type": "array", "maxItems": 200, "items": {"type": "string"}}}},
      "Search": {"type": "object", "additionalProperties": false, "required": ["text"],
        "properties": {"text": {"type": "string", "minLength": 1}, "k": {"type": "integer", "minimum": 1}}},
      "Request": {"type": "object", "additionalProperties": false, "required": ["pipeline"],
        "properties": {"pipeline": {"type": "string"}, "user": {"type": "string"},
                       "items": {"type": "array", "maxItems": 200, "items": {"type": "string"}},
                       "events": {"type": "array", "maxItems": 200, "items": {"$ref": "#/components/schemas/Event"}},
                       "text": {"type": "string"}, "k": {"type": "integer", "minimum": 1},
                       "exclude": {"type": "array", "maxItems": 200, "items": {"type": "string"}}}},
      "Feedback": {"type": "object", "additionalProperties": false, "required": ["user"],
        "properties": {"user": {"type": "string", "minLength": 1}, "item": {"type": "string"}, "type": {"type": "string"},
                       "weight": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "maximum": 1000000}, "time": {"type": "number"},
                       "events": {"type": "array", "maxItems": 200, "items": {"$ref": "#/components/schemas/Event"}}}},
      "RecommendedItem": {"type": "object", "required": ["item", "score"],
        "properties": {"item": {"type": "string"}, "score": {"type": "number"}, "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}},
      "Recommendations": {"type": "object", "required": ["pipeline", "items", "models", "timings", "notes"],
        "properties": {"pipeline": {"type": "string"}, "items": {"type": "array", "items": {"$ref": "#/components/schemas/RecommendedItem"}},
                       "models": {"type": "object", "additionalProperties": {"type": "integer"}},
                       "timings": {"type": "object", "description": "stage → microseconds", "additionalProperties": {"type": "number"}},
                       "notes": {"type": "array", "items": {"type": "string"}}}},
      "Error": {"type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["status", "problem"],
          "properties": {"status": {"type": "integer"}, "field": {"type": "string"}, "problem": {"type": "string"}}}}}
    },
    "responses": {
      "Recommendations": {"description": "recommendations, best first, with the model versions that answered and per-stage timings",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Recommendations"}}}},
      "Version": {"description": "the model version", "content": {"application/json": {"schema": {"type": "object"}}}},
      "Error": {"description": "a JSON error naming the field and the problem", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    }
  }
}
"""#
}
