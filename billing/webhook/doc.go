// Package webhook delivers billingd's events to the operator's own
// application: signed outbound webhooks.
//
// The operator registers endpoints (POST /v1/webhook_endpoints) with the
// event types they want. store.InsertEvents, which every state change calls
// in its transaction, queues one delivery row per event and subscribed
// endpoint with a single INSERT … SELECT, so a delivery is never lost or
// invented by a crash. Service.Run, a scheduled job, posts due deliveries
// outside any transaction, a few at a time and each with a timeout, so a
// slow or dead receiver never holds up billing. Failures are retried with
// exponential backoff for Window (three days); every attempt is recorded.
// Deliveries of one object to one endpoint go out in event order. An
// endpoint that fails for the whole window is disabled, with a
// webhook_endpoint.disabled event, and re-enabling it redelivers what it
// missed.
//
// Each request is a JSON event, {"id":"evt_…","object":"event","type":…,
// "created":…,"data":{"object":{…}}}, signed the way Stripe signs: the
// Billing-Signature header is "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" keyed with the endpoint's whsec_ secret>". Receivers check it
// with Verify and deduplicate by the event id: delivery is at least once.
package webhook
