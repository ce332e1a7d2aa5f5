-- wrk -s bench/post1k.lua: every request a POST of a 1 KiB JSON body, the
-- shape of model-inference traffic (bench/README.md, "Loop core": request
-- bodies). Sent to the shared upstream's /upload, which answers the
-- body's length ("1024"); with URL_PATH=/upload and WRK_SCRIPT set,
-- bench/sidebyside.sh measures it like the GET baseline.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt":"' .. string.rep("x", 1024 - 13) .. '"}'
