/**
 * Availability Zones per region, for validating `azCount` and cell `azs` before anything is
 * built. Pure data: the program never asks AWS (no getAvailabilityZones invoke), so preview and
 * the offline plan see the same subnets.
 *
 * Source: AWS "Regions and Availability Zones" (https://aws.amazon.com/about-aws/global-infrastructure/regions_az/)
 * and the EC2 user guide (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-regions-availability-zones.html),
 * as AWS listed them in 2025; table written 2026-12-05. AZ *names* map to different physical
 * zones per account, and some accounts do not get every name (older accounts in us-east-1 and
 * ap-northeast-1): if `aws ec2 describe-availability-zones` in the platform account lists fewer
 * letters, shorten the entry. A region missing here is refused by validate: add it with its letters.
 */

/** Region -> the AZ letters accounts get there, in order. */
export const REGION_AZ_LETTERS: Readonly<Record<string, string>> = {
  "us-east-1": "abcdef",
  "us-east-2": "abc",
  "us-west-2": "abcd",
  "ca-central-1": "abd",
  "eu-west-1": "abc",
  "eu-west-2": "abc",
  "eu-west-3": "abc",
  "eu-central-1": "abc",
  "eu-north-1": "abc",
  "ap-southeast-1": "abc",
  "ap-southeast-2": "abc",
  "ap-northeast-1": "acd",
};

/** The AZ names of a region, or undefined for a region the table does not know. */
export function regionAzs(region: string): string[] | undefined {
  const letters = REGION_AZ_LETTERS[region];
  return letters === undefined ? undefined : [...letters].map((l) => `${region}${l}`);
}

/** Why `azs` cannot be used in `region` (one line), or undefined when they can. */
export function azProblem(region: string, azs: readonly string[]): string | undefined {
  const known = regionAzs(region);
  if (!known) return `region ${region} is not in the AZ table (infra/model/regions.ts); add its AZ letters there`;
  const unknown = azs.filter((az) => !known.includes(az));
  if (unknown.length === 0) return undefined;
  return `${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not an AZ of ${region} (it has ${known.length}: ${known.join(", ")})`;
}
