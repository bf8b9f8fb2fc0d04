import { describe, expect, it } from "vitest";
import { BALANCER_DRIVERS } from "../../src/balancer/drivers.js";

describe("each balancer driver's part of nexus init", () => {
  const answers = (watch?: string) => ({
    name: "shop",
    user: "deploy",
    host: "web1",
    values: {},
    ...(watch ? { watch } : {}),
  });

  for (const driver of BALANCER_DRIVERS) {
    it(`${driver.type}: the starter entry is one its schema accepts, with or without the watch`, () => {
      for (const watch of [undefined, "30s"]) {
        const entry = driver.starter.entry(answers(watch));
        const parsed = driver.schema.safeParse(
          driver.type === BALANCER_DRIVERS[0].type ? { type: driver.type, ...entry } : entry,
        );
        expect(parsed.error).toBeUndefined();
      }
    });

    it(`${driver.type}: its flags take values and name the balancer they are for`, () => {
      for (const option of driver.starter.options) {
        expect(option.flags).toMatch(/^--[a-z-]+ <[a-z]+>$/);
        expect(option.description.length).toBeGreaterThan(10);
      }
    });
  }

  it("Nginx: a non-root user tests and reloads through sudo -n; the watch gets an access log", () => {
    const nginx = BALANCER_DRIVERS.find((driver) => driver.type === "nginx");
    const entry = nginx?.starter.entry(answers("30s"));
    expect(entry).toMatchObject({
      upstreamFile: "/etc/nginx/nexus/shop-servers.conf",
      testCommand: "sudo -n /usr/sbin/nginx -t",
      reloadCommand: "sudo -n /usr/sbin/nginx -s reload",
      accessLog: "/var/log/nginx/access.log",
    });
    expect(nginx?.starter.entry(answers())).not.toHaveProperty("accessLog");
  });

  it("HAProxy: the backend defaults to the app name made valid for HAProxy", () => {
    const haproxy = BALANCER_DRIVERS.find((driver) => driver.type === "haproxy");
    expect(haproxy?.starter.entry({ ...answers(), name: "my@shop" })).toEqual({
      type: "haproxy",
      host: "web1",
      backend: "my_shop",
    });
  });
});
