import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { resolveConfig } from "../../src/config/load.js";
import { pm2NameProblem } from "../../src/process/pm2/schema.js";

function problems(app: string, pm2?: string): string[] {
  try {
    resolveConfig(
      {
        app: { name: app },
        servers: [{ name: "web-1", host: "10.0.0.1" }],
        deployPath: "/srv/api",
        pm2: pm2 === undefined ? {} : { name: pm2 },
        balancer: { host: "web-1", upstreamFile: "/etc/nginx/conf.d/upstream.conf" },
      },
      "deploy.config.json",
      "/project",
    );
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
}

describe("PM2 names with a meaning", () => {
  it("refuses `all`, names PM2 reads as an id, options, regexes and process files, naming the field", () => {
    expect(problems("api", "all")).toEqual([
      'pm2.name: "all" means every process to PM2: choose another name',
    ]);
    expect(problems("all")).toEqual(['app.name: "all" means every process to PM2: choose another name']);
    expect(problems("123")).toEqual([
      'app.name: "123" reads as a PM2 process id: use a name with a letter in it',
    ]);
    for (const id of ["7", "1e3", "0x1f", "Infinity", " 12"]) {
      expect(problems("api", id), id).toHaveLength(1);
      expect(problems("api", id)[0]).toMatch(/^pm2\.name: .* reads as a PM2 process id/);
    }
    expect(problems("api", "-f")).toEqual([
      'pm2.name: "-f" would be read as an option: it must not start with "-"',
    ]);
    expect(problems("api", "/api/")[0]).toMatch(/^pm2\.name: .*regex/);
    expect(problems("app.json")[0]).toMatch(
      /^app\.name: "app\.json" contains "\.json": PM2 would read it as a process file/,
    );
    expect(problems("api", "site.config.js")[0]).toMatch(/process file/);
  });

  it("accepts ordinary names", () => {
    for (const name of ["api", "api-2", "shop.v2", "2fa-service", "ALL", "allegro"]) {
      expect(pm2NameProblem(name), name).toBeUndefined();
      expect(problems(name)).toEqual([]);
    }
  });
});
