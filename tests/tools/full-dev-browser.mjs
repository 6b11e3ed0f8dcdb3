// Logs in to the full-dev example's servers in headless Chromium (Debian's, driven by
// playwright-core) and keeps one screenshot of each: Jupyter's file list showing the persisted
// home, and code-server with a file of that home open. Exits 1, naming what it did not see.
// Usage: node full-dev-browser.mjs OUT_DIR jupyter URL TOKEN NAME_IN_HOME [code-server URL PASSWORD FILE TEXT]
import { chromium } from "playwright-core";

const [out, ...rest] = process.argv.slice(2);
const servers = [];
for (let i = 0; i < rest.length; ) {
  if (rest[i] === "jupyter") servers.push({ kind: "jupyter", url: rest[i + 1], secret: rest[i + 2], name: rest[i + 3] }), (i += 4);
  else if (rest[i] === "code-server") servers.push({ kind: "code-server", url: rest[i + 1], secret: rest[i + 2], file: rest[i + 3], text: rest[i + 4] }), (i += 5);
  else throw new Error(`unknown server ${rest[i]}`);
}

// Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
for (const server of servers) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 850 } });
  const screenshot = `${out}/${server.kind}.png`;
  try {
    // Both log-in pages have one password field and a submit button.
    await page.goto(`${server.url}/login`);
    await page.fill("input[type=password]", server.secret);
    await Promise.all([page.waitForLoadState("load"), page.press("input[type=password]", "Enter")]);
    if (server.kind === "jupyter") {
      // Notebook's tree view or JupyterLab's file browser: the home's entries by name.
      await page.getByText(server.name, { exact: true }).first().waitFor({ timeout: 60_000 });
    } else {
      const folder = server.file.slice(0, server.file.lastIndexOf("/"));
      const payload = encodeURIComponent(JSON.stringify([["openFile", `vscode-remote://${new URL(server.url).host}${server.file}`]]));
      await page.goto(`${server.url}/?folder=${encodeURIComponent(folder)}&payload=${payload}`);
      await page.locator(".view-lines", { hasText: server.text }).first().waitFor({ timeout: 120_000 });
    }
    await page.screenshot({ path: screenshot });
    console.log(`${server.kind}: logged in, ${server.kind === "jupyter" ? `file list shows ${server.name}` : `${server.file} open`}; ${screenshot}`);
  } catch (error) {
    failed = true;
    await page.screenshot({ path: screenshot }).catch(() => {});
    console.log(`${server.kind}: FAILED: ${error.message.split("\n")[0]} (what the page showed: ${screenshot})`);
  }
  await page.close();
}
await browser.close();
process.exit(failed ? 1 : 0);
