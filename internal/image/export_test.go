package image

// ParseOCIManifestForFuzz exposes the manifest parser to the external fuzz target.
func ParseOCIManifestForFuzz(body []byte, contentType string) {
	m, err := parseOCIManifest(body, contentType)
	if err != nil {
		return
	}
	if !m.isIndex() {
		artifactLayer(m)
		return
	}
	pickFromIndex(m, OCIRequest{CPUArch: "x86_64"})
}
