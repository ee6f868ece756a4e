"""HTTP support every edge shares (the API, the web pages, the FHIR REST face): what controllers
receive, the middleware, guards, session cookies and the rendering of errors. Imports no edge."""
