package middleware

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Traefik decodes its whole dynamic configuration at once, and one unknown
// field or one value of the wrong type fails the decode of every file in
// the directory: every route would stop updating. So an operator's Traefik
// middleware definition is checked against the shape Traefik v3 decodes
// (field names as in its dynamic configuration, matched without regard to
// case, as Traefik's decoder does) before it is ever written. Types left
// out (plugin, the deprecated ipWhiteList, rateLimit's redis) are used by
// reference instead: define them in Traefik's own configuration and name
// them here as "name@file". TestSchemaMatchesTraefik loads every field of
// every type through Traefik's own decoder.

// kind is what a field's value must be.
type kind int

const (
	kString   kind = iota // any scalar (Traefik reads numbers as text)
	kBool                 // true or false
	kInt                  // an integer
	kDuration             // seconds as an integer, or a Go duration ("10s")
	kStrings              // a list of scalars
	kStrMap               // a mapping of scalars
	kIntMap               // a mapping to integers
	kStruct               // a mapping with the fields of sub
)

type field struct {
	kind kind
	sub  fields
}

type fields map[string]field

var (
	str      = field{kind: kString}
	boolean  = field{kind: kBool}
	integer  = field{kind: kInt}
	duration = field{kind: kDuration}
	strList  = field{kind: kStrings}
	strMap   = field{kind: kStrMap}
	intMap   = field{kind: kIntMap}
)

func nested(f fields) field { return field{kind: kStruct, sub: f} }

var (
	ipStrategy      = nested(fields{"depth": integer, "excludedIPs": strList, "ipv6Subnet": integer})
	sourceCriterion = nested(fields{"ipStrategy": ipStrategy, "requestHeaderName": str, "requestHost": boolean})
	dnInfo          = fields{"country": boolean, "province": boolean, "locality": boolean, "organization": boolean, "commonName": boolean, "serialNumber": boolean, "domainComponent": boolean}
)

// traefikTypes are the middleware types an operator may define, with their
// fields.
var traefikTypes = fields{
	"addPrefix":        nested(fields{"prefix": str}),
	"stripPrefix":      nested(fields{"prefixes": strList, "forceSlash": boolean}),
	"stripPrefixRegex": nested(fields{"regex": strList}),
	"replacePath":      nested(fields{"path": str}),
	"replacePathRegex": nested(fields{"regex": str, "replacement": str}),
	"chain":            nested(fields{"middlewares": strList}),
	"ipAllowList":      nested(fields{"sourceRange": strList, "ipStrategy": ipStrategy, "rejectStatusCode": integer}),
	"headers": nested(fields{
		"customRequestHeaders": strMap, "customResponseHeaders": strMap,
		"accessControlAllowCredentials": boolean, "accessControlAllowHeaders": strList, "accessControlAllowMethods": strList,
		"accessControlAllowOriginList": strList, "accessControlAllowOriginListRegex": strList, "accessControlExposeHeaders": strList,
		"accessControlMaxAge": integer, "addVaryHeader": boolean, "allowedHosts": strList, "hostsProxyHeaders": strList,
		"sslProxyHeaders": strMap, "stsSeconds": integer, "stsIncludeSubdomains": boolean, "stsPreload": boolean,
		"forceSTSHeader": boolean, "frameDeny": boolean, "customFrameOptionsValue": str, "contentTypeNosniff": boolean,
		"browserXssFilter": boolean, "customBrowserXSSValue": str, "contentSecurityPolicy": str,
		"contentSecurityPolicyReportOnly": str, "publicKey": str, "referrerPolicy": str, "permissionsPolicy": str,
		"isDevelopment": boolean, "featurePolicy": str, "sslRedirect": boolean, "sslTemporaryRedirect": boolean,
		"sslHost": str, "sslForceHost": boolean,
	}),
	"errors":         nested(fields{"status": strList, "statusRewrites": intMap, "service": str, "query": str, "errorRequestHeaders": strList}),
	"rateLimit":      nested(fields{"average": integer, "period": duration, "burst": integer, "sourceCriterion": sourceCriterion}),
	"redirectRegex":  nested(fields{"regex": str, "replacement": str, "permanent": boolean}),
	"redirectScheme": nested(fields{"scheme": str, "port": str, "permanent": boolean}),
	"basicAuth":      nested(fields{"users": strList, "usersFile": str, "realm": str, "removeHeader": boolean, "headerField": str}),
	"digestAuth":     nested(fields{"users": strList, "usersFile": str, "realm": str, "removeHeader": boolean, "headerField": str}),
	"forwardAuth": nested(fields{
		"address": str, "tls": nested(fields{"ca": str, "cert": str, "key": str, "insecureSkipVerify": boolean}),
		"trustForwardHeader": boolean, "authResponseHeaders": strList, "authResponseHeadersRegex": str,
		"authRequestHeaders": strList, "addAuthCookiesToResponse": strList, "headerField": str,
		"maxResponseBodySize": integer, "forwardBody": boolean, "maxBodySize": integer, "preserveLocationHeader": boolean,
		"preserveRequestMethod": boolean, "authSigninURL": str,
	}),
	"inFlightReq": nested(fields{"amount": integer, "sourceCriterion": sourceCriterion}),
	"buffering": nested(fields{
		"maxRequestBodyBytes": integer, "memRequestBodyBytes": integer, "maxResponseBodyBytes": integer,
		"memResponseBodyBytes": integer, "retryExpression": str,
	}),
	"circuitBreaker": nested(fields{"expression": str, "checkPeriod": duration, "fallbackDuration": duration, "recoveryDuration": duration, "responseCode": integer}),
	"compress":       nested(fields{"excludedContentTypes": strList, "includedContentTypes": strList, "minResponseBodyBytes": integer, "encodings": strList, "defaultEncoding": str}),
	"passTLSClientCert": nested(fields{"pem": boolean, "info": nested(fields{
		"notAfter": boolean, "notBefore": boolean, "sans": boolean, "serialNumber": boolean,
		"subject": nested(withOU(dnInfo)), "issuer": nested(dnInfo),
	})}),
	"retry": nested(fields{
		"attempts": integer, "timeout": duration, "initialInterval": duration, "maxRequestBodyBytes": integer,
		"status": strList, "disableRetryOnNetworkError": boolean, "retryNonIdempotentMethod": boolean,
	}),
	"contentType": nested(fields{"autoDetect": boolean}),
	"grpcWeb":     nested(fields{"allowOrigins": strList}),
}

// withOU is dn plus organizationalUnit, which only a subject has.
func withOU(dn fields) fields {
	f := fields{"organizationalUnit": boolean}
	for k, v := range dn {
		f[k] = v
	}
	return f
}

// lookup finds name in fs without regard to case, as Traefik does.
func (fs fields) lookup(name string) (string, field, bool) {
	for k, f := range fs {
		if strings.EqualFold(k, name) {
			return k, f, true
		}
	}
	return "", field{}, false
}

// checkTraefik checks one definition: a mapping with exactly one key, a
// middleware type, whose value has that type's fields.
func checkTraefik(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		return fmt.Errorf("line %d: a Traefik middleware is a mapping with one key, its type (e.g. headers:), or a reference \"name@provider\"", n.Line)
	}
	typ := n.Content[0].Value
	if _, f, ok := traefikTypes.lookup(typ); ok {
		return checkValue(typ, n.Content[1], f)
	}
	return fmt.Errorf("line %d: %q is not a Traefik middleware type dockroute can check; define it in Traefik's own configuration and name it here as a reference (\"name@file\")", n.Line, typ)
}

func checkValue(path string, n *yaml.Node, f field) error {
	bad := func(want string) error { return fmt.Errorf("line %d: %s: want %s", n.Line, path, want) }
	switch f.kind {
	case kString:
		if n.Kind != yaml.ScalarNode {
			return bad("a single value")
		}
	case kBool:
		if _, err := strconv.ParseBool(n.Value); n.Kind != yaml.ScalarNode || err != nil {
			return bad("true or false")
		}
	case kInt:
		if _, err := strconv.ParseInt(n.Value, 10, 64); n.Kind != yaml.ScalarNode || err != nil {
			return bad("an integer")
		}
	case kDuration:
		if n.Kind != yaml.ScalarNode || !isDuration(n.Value) {
			return bad(`a duration ("10s") or a number of seconds`)
		}
	case kStrings:
		if n.Kind != yaml.SequenceNode {
			return bad("a list")
		}
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: %s: want a list of single values", c.Line, path)
			}
		}
	case kStrMap, kIntMap:
		if n.Kind != yaml.MappingNode {
			return bad("a mapping")
		}
		for i := 1; i < len(n.Content); i += 2 {
			v := n.Content[i]
			if _, err := strconv.ParseInt(v.Value, 10, 64); v.Kind != yaml.ScalarNode || f.kind == kIntMap && err != nil {
				return fmt.Errorf("line %d: %s.%s: want a single value", v.Line, path, n.Content[i-1].Value)
			}
		}
	case kStruct:
		if n.Kind != yaml.MappingNode {
			return bad("a mapping")
		}
		for i := 0; i < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name, sub, ok := f.sub.lookup(k.Value)
			if !ok {
				return fmt.Errorf("line %d: %s: unknown field %q (Traefik would refuse the whole file)", k.Line, path, k.Value)
			}
			if err := checkValue(path+"."+name, v, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

func isDuration(s string) bool {
	if _, err := strconv.ParseInt(s, 10, 64); err == nil {
		return true
	}
	_, err := time.ParseDuration(s)
	return err == nil
}
