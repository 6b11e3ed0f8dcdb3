// Validates Kubernetes manifests two ways, and exits 1 listing every error:
//  1. kubernetes-models' JSON schemas: types, required fields, enumerations;
//  2. a strict walk over the field names of @kubernetes/client-node's generated models: a field
//     the API does not have (a typo such as `mountpath`) is an error. The schemas alone accept
//     unknown fields, as the API server does (with only a warning), which is how typos slip by.
// Usage: node validate-k8s.mjs FILE.yaml...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const schemas = {
  "v1/Pod": async () => (await import("kubernetes-models/v1/Pod")).Pod,
  "v1/PersistentVolumeClaim": async () => (await import("kubernetes-models/v1/PersistentVolumeClaim")).PersistentVolumeClaim,
  "v1/ConfigMap": async () => (await import("kubernetes-models/v1/ConfigMap")).ConfigMap,
  "v1/Secret": async () => (await import("kubernetes-models/v1/Secret")).Secret,
  "v1/Service": async () => (await import("kubernetes-models/v1/Service")).Service,
  "apps/v1/Deployment": async () => (await import("kubernetes-models/apps/v1/Deployment")).Deployment,
  "apps/v1/StatefulSet": async () => (await import("kubernetes-models/apps/v1/StatefulSet")).StatefulSet,
};
const roots = {
  "v1/Pod": "V1Pod",
  "v1/PersistentVolumeClaim": "V1PersistentVolumeClaim",
  "v1/ConfigMap": "V1ConfigMap",
  "v1/Secret": "V1Secret",
  "v1/Service": "V1Service",
  "apps/v1/Deployment": "V1Deployment",
  "apps/v1/StatefulSet": "V1StatefulSet",
};
const scalars = new Set(["string", "number", "boolean", "Date", "any", "object", "IntOrString"]);

async function model(type) {
  try {
    const module = await import(`@kubernetes/client-node/dist/gen/models/${type}.js`);
    return module[type]?.getAttributeTypeMap ? module[type] : null;
  } catch {
    return null;
  }
}

async function strict(value, type, path, errors) {
  if (value === null || value === undefined || scalars.has(type)) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) return errors.push(`${path}: expected a list`);
    for (let i = 0; i < value.length; i++) await strict(value[i], array[1], `${path}[${i}]`, errors);
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [key, item] of Object.entries(value)) await strict(item, map[1], `${path}.${key}`, errors);
    return;
  }
  const cls = await model(type);
  if (!cls || typeof value !== "object") return;
  const fields = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [key, item] of Object.entries(value)) {
    if (!fields.has(key)) errors.push(`${path}.${key}: unknown field (${type} has: ${[...fields.keys()].join(", ")})`);
    else await strict(item, fields.get(key), `${path}.${key}`, errors);
  }
}

let failed = false;
for (const file of process.argv.slice(2)) {
  for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
    const errors = document.errors.map((e) => e.message);
    const object = document.toJS();
    if (!object) continue;
    const key = `${object.apiVersion}/${object.kind}`;
    const name = `${file}: ${key} ${object.metadata?.name ?? "(no name)"}`;
    if (!schemas[key]) {
      errors.push(`no schema for ${key} in this validator`);
    } else {
      try {
        new (await schemas[key]())(object).validate();
      } catch (e) {
        errors.push(e.message);
      }
      await strict(object, roots[key], key, errors);
    }
    if (errors.length) {
      failed = true;
      console.log(`${name}: INVALID\n  ${errors.join("\n  ")}`);
    } else {
      console.log(`${name}: valid`);
    }
  }
}
process.exit(failed ? 1 : 0);
