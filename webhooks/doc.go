// Package webhooks receives TechPass's webhook deliveries for a tenant:
// it checks their signature, reads the event, and applies what it means to
// the tenant's mirror exactly once.
//
// Files: signature.go checks signatures, event.go reads events,
// receiver.go handles a delivery, deliveries.go decides what a verified one
// does (Apply, Recorded: once per digest, resumed after a stop) over the
// records of store.go (Store, Tx), which decide nothing. What a deleted or
// changed user means for the mirror is a rule of package groups
// (RemoveDeletedUser, FollowUpdatedUser), applied in the transaction that
// records the delivery.
//
// A delivery is trusted for its signature only. TechPass signs
// "<timestamp>:<raw body>" with the tenant's webhook secret (hex
// HMAC-SHA256) and sends the timestamp and the signature in the
// X-TECHPASS-SIGNATURE header. The rest of a delivery is read tolerantly and
// checked like any input: sizes are bounded, ids must be object ids, e-mails
// plain addresses.
//
// What TechPass publishes is thin, so this package keeps its assumptions
// here, where they can be corrected:
//
//   - Header format (assumed beyond "k=v pairs split on , and ="): the
//     timestamp is the value of key t (also ts, timestamp or time), in Unix
//     seconds (milliseconds are accepted when the number is that large); the
//     signature is the value of v1 (also v, s, sig, signature), lower- or
//     upper-case hex. Keys are compared case-insensitively, spaces around
//     pairs are ignored, and several signature pairs are allowed (any one
//     may match). Sign writes "t=<unix seconds>,v1=<hex>".
//   - Timestamps more than Tolerance (5 minutes) away from now are refused,
//     in either direction.
//   - Event type: the string field "event" (also "type", "eventType",
//     "event_type"), compared case-insensitively.
//   - User fields: read from an object under "user" or "data" (or
//     "data.user") first, then from the top level. The object id comes
//     from "userId", "objectId", "id" or "oid" in a nested object, but
//     only from "userId" or "objectId" at the top level, where "id" is
//     likely the event's own; two places naming different ids make the
//     delivery name no usable user (it is ignored). The e-mail is, in
//     order of preference, "newEmail", "newUserPrincipalName", "email",
//     "mail", "userPrincipalName", "upn" (so a user-updated event's new
//     address wins), from the first place holding a valid one; display
//     name from "displayName" or "name". Ids and e-mails are checked as
//     the API checks them (groups.IsObjectID, groups.IsEmail). An e-mail
//     or UPN alone (no id) names the user for a deletion.
//   - User-terminated events are the types in an explicit list
//     ("user-terminated", "user-account-terminated"); they are handled as
//     user-deleted. Any other type (even "user-unterminated") is Other.
//   - No delivery id is published: a delivery is identified by the SHA-256
//     of its event type and raw body, remembered for Retention (TechPass
//     retries a delivery for 14 days). A repeat within that time changes
//     nothing; the same body signed again at another time is still the
//     same delivery. An event id or time in the body (if TechPass sends
//     one) is part of the body, so two real events that carry one are two
//     deliveries; two identical bodies without one within Retention (say
//     user-updated A→B, B→A, A→B again) are taken as a retry, and the next
//     reconcile pass corrects the mirror.
//   - Deliveries are applied in the order they arrive: a retry of an old
//     user-updated that arrives after a newer one would set the older
//     e-mail (TechPass publishes no event time or sequence to order by); the
//     next reconcile pass corrects member records.
//   - A user-deleted mark by object id refuses adds of that id at once (Azure
//     AD never reuses object ids), including an add by an e-mail resolved to
//     it; an add by a marked e-mail is looked up first, since the e-mail may
//     belong to a new user now. No e-mail mark is made for an e-mail another
//     known user holds. Marks are kept for MarkRetention (30 days).
//   - A user-updated changes only a user the mirror knows and that is not
//     marked deleted: a late update does not bring a deleted user back.
//   - A delivery is marked recorded only after Config.OnOutcome (the audit) has
//     run: a stop in between leaves it applied but not recorded, and
//     TechPass's retry (it got no answer) resumes it, telling OnOutcome
//     what was done, without applying it again.
//   - Anyone can reach the receiver: its header is parsed before a secret
//     is read, and refusals are logged at most once a minute.
package webhooks
