/**
 * TENANCY_PRICE_TIERS: which tier a Stripe price buys. A YAML or JSON mapping, either flat
 * (`price_123: standard`) or under `prices:`. Unknown prices are not guessed: an event for one is
 * rejected with the price id named, so the map is fixed before any tenant changes.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { TIERS, type Tier } from "../../infra/model/tiers.ts";

export type PriceTiers = ReadonlyMap<string, Tier>;

export function parsePriceTiers(doc: unknown, where: string): PriceTiers {
  const map = doc && typeof doc === "object" && !Array.isArray(doc) && "prices" in doc ? doc.prices : doc;
  if (!map || typeof map !== "object" || Array.isArray(map)) {
    throw new Error(`${where}: must be a mapping of Stripe price id to tier (${TIERS.join(", ")})`);
  }
  const out = new Map<string, Tier>();
  const problems: string[] = [];
  for (const [price, tier] of Object.entries(map as Record<string, unknown>)) {
    if (typeof tier !== "string" || !(TIERS as readonly string[]).includes(tier)) {
      problems.push(`${where}: ${price}: tier ${JSON.stringify(tier)} is not one of ${TIERS.join(", ")}`);
      continue;
    }
    out.set(price, tier as Tier);
  }
  if (problems.length > 0) throw new Error(problems.join("; "));
  if (out.size === 0) throw new Error(`${where}: maps no price to a tier`);
  return out;
}

export function loadPriceTiers(path: string): PriceTiers {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`${path}: not YAML/JSON: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
  return parsePriceTiers(doc, path);
}
