using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>Boot hooks through the published binary: real processes, real users, a real venv (offline).</summary>
public sealed class HooksTests : IDisposable
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
    public void Hooks_run_as_the_homes_owner_with_its_groups_and_never_as_root()
    {
        Require.Root();
        HomeFixture.Write(_scratch.Home, ".bashrc", "x\n");
        Assert.Equal(0, _scratch.Boot().ExitCode);
        ChildProcess.MustSucceed("chown", "-R", $"{Platform.Nobody}:{Platform.Nobody}", _scratch.PersistedHome);
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
        Assert.Contains(third.ErrorLines, l => l.Contains("info: hooks[6] requirements.txt succeeded", StringComparison.Ordinal));
        Assert.Contains($"export PATH=\"{_scratch.Workspace}/venv/bin:$PATH\" ;; esac", File.ReadAllText(Path.Join(_scratch.PersistedHome, ".bashrc")));
    }

    [Fact]
    public void The_full_dev_example_installs_jupyterlab_once_and_starts_it_in_the_background_every_boot()
    {
        // A stand-in jupyterlab: its "jupyter lab" records that it started, then serves (sleeps).
        string wheels = _scratch.Create("wheels");
        string started = Path.Join(_scratch.Workspace, "jupyter-started");
        WheelBuilder.Build(
            wheels,
            "jupyterlab",
            "4.0.0",
            new Dictionary<string, string>
            {
                ["fake_jupyter/__init__.py"] = "",
                ["fake_jupyter/cli.py"] = $"import os, sys, time\ndef main():\n    open({ChildProcess.Quote(started).Replace('\'', '"')}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n    time.sleep(30)\n",
            },
            new Dictionary<string, string> { ["jupyter"] = "fake_jupyter.cli:main" });
        string example = Path.Join(RepositoryPaths.Root, "container/examples/full-dev");
        Directory.CreateDirectory(Path.Join(_scratch.Workspace, ".packet/first-boot.d"));
        Directory.CreateDirectory(Path.Join(_scratch.Workspace, ".packet/boot.d"));
        File.Copy(Path.Join(example, "first-boot.d/10-install-jupyterlab"), Path.Join(_scratch.Workspace, ".packet/first-boot.d/10-install-jupyterlab"));
        File.Copy(Path.Join(example, "boot.d/50-start-jupyterlab"), Path.Join(_scratch.Workspace, ".packet/boot.d/50-start-jupyterlab"));
        var offline = new Dictionary<string, string?> { ["PIP_NO_INDEX"] = "1", ["PIP_FIND_LINKS"] = wheels, ["JUPYTER_PORT"] = "8999" };

        var first = _scratch.Boot(environment: offline, timeout: TimeSpan.FromMinutes(3));
        WaitFor(() => File.Exists(started));
        var second = _scratch.Boot(environment: offline);
        WaitFor(() => File.ReadAllLines(started).Length == 2);

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains(first.ErrorLines, l => l.Contains("first-boot.d/10-install-jupyterlab succeeded", StringComparison.Ordinal));
        Assert.DoesNotContain(second.ErrorLines, l => l.Contains("10-install-jupyterlab", StringComparison.Ordinal));
        Assert.Contains(second.ErrorLines, l => l.Contains("boot.d/50-start-jupyterlab: JupyterLab starting on port 8999", StringComparison.Ordinal));
        Assert.All(File.ReadAllLines(started), line => Assert.Contains("lab --no-browser --ip=0.0.0.0 --port=8999", line));
        ChildProcess.Run("pkill", ["-f", "fake_jupyter|venv/bin/jupyter"]);
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
