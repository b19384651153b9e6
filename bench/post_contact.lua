-- wrk script: POST one contact per request with the bearer token from the environment.
local token = os.getenv("BENCH_TOKEN")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.body = '{"peer_ref":"BENCH-001","occurred_at":"2025-05-05T10:00:00Z","duration_minutes":30,' ..
           '"modality":"phone","behaviours":["empathy","active_listening","hope"],' ..
           '"notes":"Talked through the week; peer set their own next step.","peer_rating":8}'
