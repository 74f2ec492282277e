package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/porticohq/portico/core"
	"github.com/porticohq/portico/core/pack"
	"github.com/porticohq/portico/hostapi"
	"github.com/porticohq/portico/internal/atomicfile"
)

// packCmd is `portico pack`: build, inspect, sign and verify packs
// offline; install and list them on a running gateway (docs/packs.md).
func packCmd(g *globals, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "pack", Short: "Build, inspect, sign and verify skill packs; install them on a running gateway"}

	var out string
	build := &cobra.Command{
		Use:   "build DIR",
		Short: "Check a pack directory and write it as a deterministic .tar.gz (pack.sig included when present)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := readPack(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = p.Manifest.Name + "-" + p.Manifest.Version + ".tar.gz"
			}
			var buf bytes.Buffer
			if _, err := p.WriteTo(&buf); err != nil {
				return err
			}
			if err := atomicfile.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "built %s: %s %s, %d plugins, %s (%s unpacked)\n", out, p.Manifest.Name, p.Manifest.Version,
				len(p.Manifest.Plugins), size(int64(buf.Len())), size(p.Size()))
			return nil
		},
	}
	build.Flags().StringVarP(&out, "output", "o", "", "archive to write (default <name>-<version>.tar.gz)")

	var pubs []string
	var asJSON bool
	inspect := &cobra.Command{
		Use:   "inspect FILE|DIR",
		Short: "Show a pack's manifest, plugins, sizes, ABI and signature status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := readPack(args[0])
			if err != nil {
				return err
			}
			keys, err := readPublicKeys(pubs)
			if err != nil {
				return err
			}
			return printPack(stdout, p, keys, asJSON)
		},
	}
	inspect.Flags().StringArrayVar(&pubs, "pub", nil, "trusted public key (\"ed25519:...\" or a file holding one) to check the signature against; repeatable")
	inspect.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var keyFile string
	sign := &cobra.Command{
		Use:   "sign FILE|DIR --key private.key",
		Short: "Sign a pack: rewrites the .tar.gz with pack.sig inside, or writes DIR/pack.sig",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			key, err := pack.ParsePrivateKey(string(b))
			if err != nil {
				return fmt.Errorf("--key %s: %w", keyFile, err)
			}
			p, err := readPack(args[0])
			if err != nil {
				return err
			}
			p.Sign(key)
			if st, err := os.Stat(args[0]); err == nil && st.IsDir() {
				sig := p.Signature
				enc, _ := json.MarshalIndent(sig, "", "  ")
				err = atomicfile.WriteFile(filepath.Join(args[0], pack.SignatureFile), append(enc, '\n'), 0o644)
			} else {
				var buf bytes.Buffer
				if _, err = p.WriteTo(&buf); err == nil {
					err = atomicfile.WriteFile(args[0], buf.Bytes(), 0o644)
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "signed %s %s (%s) with %s\n", p.Manifest.Name, p.Manifest.Version, p.Signature.Digest, p.Signature.Key)
			return nil
		},
	}
	sign.Flags().StringVar(&keyFile, "key", "", "private key file (portico pack keygen writes one)")
	sign.MarkFlagRequired("key")

	var verifyPubs []string
	verify := &cobra.Command{
		Use:   "verify FILE|DIR --pub KEY",
		Short: "Check a pack's signature against trusted public keys; fails unless one of them signed it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := readPublicKeys(verifyPubs)
			if err != nil {
				return err
			}
			p, err := readPack(args[0])
			if err != nil {
				return err
			}
			if err := p.Verify(keys); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s %s: signature valid, by %s\n", p.Manifest.Name, p.Manifest.Version, p.Signature.Key)
			return nil
		},
	}
	verify.Flags().StringArrayVar(&verifyPubs, "pub", nil, "trusted public key (\"ed25519:...\" or a file holding one); repeatable")
	verify.MarkFlagRequired("pub")

	var keyOut string
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Make a signing key pair: writes the private key (mode 0600) and FILE.pub, prints the public key for packs.trusted_keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, priv, err := pack.GenerateKey()
			if err != nil {
				return err
			}
			f, err := os.OpenFile(keyOut, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("%w (keygen never overwrites a key)", err)
			}
			if _, err := fmt.Fprintln(f, pack.FormatPrivateKey(priv)); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.WriteFile(keyOut+".pub", []byte(pack.FormatPublicKey(pub)+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "wrote %s (keep it secret) and %s\n", keyOut, keyOut+".pub")
			fmt.Fprintln(stdout, pack.FormatPublicKey(pub))
			return nil
		},
	}
	keygen.Flags().StringVarP(&keyOut, "output", "o", "pack-signing.key", "private key file to create")

	cmd.AddCommand(build, inspect, sign, verify, keygen)
	cmd.AddCommand(packRemoteCmds(g, stdout, stderr)...)
	return cmd
}

// packRemoteCmds talk to a running gateway.
func packRemoteCmds(g *globals, stdout, stderr io.Writer) []*cobra.Command {
	o := &adminOpts{}
	install := &cobra.Command{
		Use:   "install FILE|DIR",
		Short: "Upload a pack to the running gateway, which checks it and installs or upgrades it all or nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := readPack(args[0])
			if err != nil {
				return err
			}
			var body bytes.Buffer
			if _, err := p.WriteTo(&body); err != nil {
				return err
			}
			r, err := g.remote(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "uploading %s %s (%s)...\n", p.Manifest.Name, p.Manifest.Version, size(int64(body.Len())))
			resp, err := r.send(cmd.Context(), r.client, "POST", "/api/v1/packs", "application/gzip", &body)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			if err != nil {
				return fmt.Errorf("gateway at %s: read answer: %w", r.url, err)
			}
			if o.json {
				return printJSON(stdout, raw)
			}
			var info packAnswer
			if err := json.Unmarshal(raw, &info); err != nil {
				return err
			}
			verb := "installed"
			if info.Previous != "" {
				verb = "upgraded " + info.Previous + " ->"
			}
			fmt.Fprintf(stdout, "%s %s %s: plugins %s; trusted: %v\n", verb, info.Name, info.Version, strings.Join(info.Plugins, ", "), info.Trusted)
			return nil
		},
	}
	addAdminFlags(install, o)
	lo := &adminOpts{}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the packs installed on the running gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.remote(lo)
			if err != nil {
				return err
			}
			var out struct {
				Packs []packAnswer `json:"packs"`
			}
			if ok, err := r.get(cmd.Context(), lo, stdout, "/api/v1/packs", &out); !ok {
				return err
			}
			if len(out.Packs) == 0 {
				fmt.Fprintln(stdout, "no packs installed")
			}
			for _, p := range out.Packs {
				fmt.Fprintf(stdout, "%s %s: plugins %s; trusted: %v\n", p.Name, p.Version, strings.Join(p.Plugins, ", "), p.Trusted)
			}
			return nil
		},
	}
	addAdminFlags(list, lo)
	return []*cobra.Command{install, list}
}

// readPack reads a pack directory or archive and checks every plugin's
// manifest as strictly as the gateway will.
func readPack(name string) (*pack.Pack, error) {
	p, err := pack.ReadFile(name, pack.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, pl := range p.Manifest.Plugins {
		sub, err := p.PluginFS(pl.Name)
		if err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(sub, core.ManifestFile)
		if err != nil {
			return nil, err
		}
		if _, err := core.ParseManifest(b); err != nil {
			return nil, fmt.Errorf("%s: plugin %s: %w", name, pl.Name, err)
		}
	}
	return p, nil
}

// readPublicKeys takes keys as text ("ed25519:...") or as files holding
// one.
func readPublicKeys(list []string) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, s := range list {
		if !strings.HasPrefix(s, "ed25519:") {
			b, err := os.ReadFile(s)
			if err != nil {
				return nil, fmt.Errorf("--pub %s: not a key and not a readable file: %w", s, err)
			}
			s = string(b)
		}
		k, err := pack.ParsePublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("--pub: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// signatureStatus says what a pack's signature is worth against keys.
func signatureStatus(p *pack.Pack, keys []ed25519.PublicKey) string {
	switch err := p.Verify(keys); {
	case p.Signature == nil:
		return "unsigned"
	case err == nil:
		return "valid, by trusted key " + p.Signature.Key
	case errors.Is(err, pack.ErrUntrusted) && len(keys) == 0:
		return "signed by " + p.Signature.Key + " (intact; pass --pub to check it is trusted)"
	default:
		return "INVALID: " + err.Error()
	}
}

func printPack(w io.Writer, p *pack.Pack, keys []ed25519.PublicKey, asJSON bool) error {
	d := p.Digest()
	digest := fmt.Sprintf("sha256:%x", d)
	abi := "ok"
	if err := p.CheckABI(hostapi.ABIMajor, hostapi.ABIMinor); err != nil {
		abi = err.Error()
	}
	type pluginOut struct {
		pack.Plugin
		Manifest *core.Manifest `json:"manifest"`
		Bytes    int64          `json:"bytes"`
	}
	plugins := []pluginOut{}
	for _, pl := range p.Manifest.Plugins {
		po := pluginOut{Plugin: pl}
		for _, f := range p.Files() {
			if strings.HasPrefix(f.Path, pl.Name+"/") {
				po.Bytes += int64(f.Size)
			}
		}
		if sub, err := p.PluginFS(pl.Name); err == nil {
			if b, err := fs.ReadFile(sub, core.ManifestFile); err == nil {
				po.Manifest, _ = core.ParseManifest(b)
			}
		}
		plugins = append(plugins, po)
	}
	status := signatureStatus(p, keys)
	if asJSON {
		b, err := json.MarshalIndent(map[string]any{"manifest": p.Manifest, "plugins": plugins, "files": p.Files(),
			"unpacked_bytes": p.Size(), "digest": digest, "signature": p.Signature, "signature_status": status, "abi_check": abi}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	m := p.Manifest
	fmt.Fprintf(w, "pack %s %s\n", m.Name, m.Version)
	if m.Description != "" {
		fmt.Fprintf(w, "  %s\n", m.Description)
	}
	fmt.Fprintf(w, "abi:       %s (this build speaks v%d.%d: %s)\n", m.ABI, hostapi.ABIMajor, hostapi.ABIMinor, abi)
	fmt.Fprintf(w, "size:      %d files, %s unpacked\n", len(p.Files()), size(p.Size()))
	fmt.Fprintf(w, "digest:    %s\n", digest)
	fmt.Fprintf(w, "signature: %s\n", status)
	fmt.Fprintln(w, "plugins:")
	for _, po := range plugins {
		version, kinds, skills := "?", "?", []string{}
		if po.Manifest != nil {
			version, kinds = po.Manifest.Version, strings.Join(po.Manifest.Kinds, ",")
			for _, s := range po.Manifest.Skills {
				skills = append(skills, s.Name)
			}
		}
		fmt.Fprintf(w, "  %-20s %-8s %-10s %8s  skills: %s  requests: %s\n", po.Name, version, kinds, size(po.Bytes),
			orDash(strings.Join(skills, ", ")), orDash(strings.Join(po.Grants, ", ")))
	}
	return nil
}
