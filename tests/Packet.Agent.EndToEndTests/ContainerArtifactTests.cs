using System.Text.RegularExpressions;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>The image, the manifests and the scripts, checked the way CI can check them without a cluster or a Docker engine.</summary>
public sealed partial class ContainerArtifactTests : IDisposable
{
    private readonly TempDirectory _dir = new("artifacts");

    public void Dispose() => _dir.Dispose();

    private static string Repo(string relative) => Path.Join(RepositoryPaths.Root, relative);

    private static ChildResult Node(string script, params string[] files)
    {
        string tools = Repo("tests/tools");
        Assert.True(Directory.Exists(Path.Join(tools, "node_modules")), "run `npm ci --prefix tests/tools` (scripts/test.sh does) before these tests");
        return ChildProcess.Run("node", [Path.Join(tools, script), .. files]);
    }

    [Fact]
    public void Every_Kubernetes_manifest_is_valid_against_the_API()
    {
        var manifests = Directory.GetFiles(Repo("container/k8s"), "*.yaml");
        Assert.Equal(5, manifests.Length);

        var result = Node("validate-k8s.mjs", manifests);

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Theory]
    [InlineData("pod-init-container.yaml", "subPath: home", "subpath: home", "unknown field")]
    [InlineData("pod-entrypoint.yaml", "claimName: packet-workspace", "claimname: packet-workspace", "unknown field")]
    [InlineData("pvc.yaml", "accessModes:", "accessMode:", "unknown field")]
    [InlineData("pod-entrypoint.yaml", "restartPolicy: Always", "restartPolicy: 3", "must be string")]
    public void A_misspelled_or_mistyped_field_fails_validation(string manifest, string good, string bad, string expected)
    {
        string text = File.ReadAllText(Repo($"container/k8s/{manifest}"));
        Assert.Contains(good, text);
        string broken = _dir["broken.yaml"];
        File.WriteAllText(broken, text.Replace(good, bad, StringComparison.Ordinal));

        var result = Node("validate-k8s.mjs", broken);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(expected, result.StandardOutput);
    }

    [Fact]
    public void The_Dockerfile_lints_clean_and_a_broken_one_does_not()
    {
        Assert.Equal(0, Node("lint-dockerfile.mjs", Repo("container/Dockerfile")).ExitCode);
        Assert.Equal(0, Node("lint-dockerfile.mjs", Repo("container/examples/full-dev/Dockerfile")).ExitCode);
        string broken = _dir["Dockerfile"];
        File.WriteAllText(broken, File.ReadAllText(Repo("container/Dockerfile")).Replace("COPY --from=build", "COPPY --from=build", StringComparison.Ordinal));

        var result = Node("lint-dockerfile.mjs", broken);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("Unknown instruction: COPPY", result.StandardOutput);
    }

    [Fact]
    public void The_Dockerfile_builds_in_its_own_stage_and_ships_the_agent_as_the_entry_point_of_a_chosen_CUDA_base()
    {
        string dockerfile = File.ReadAllText(Repo("container/Dockerfile"));

        Assert.Matches(@"(?m)^ARG CUDA_IMAGE=nvidia/cuda:[\d.]+-base-ubuntu22\.04$", dockerfile);
        Assert.Matches(@"(?m)^FROM \$\{SDK_IMAGE\} AS build$", dockerfile);
        Assert.Contains("&& scripts/build.sh /out", dockerfile);
        Assert.Matches(@"(?m)^FROM \$\{CUDA_IMAGE\}$", dockerfile);
        Assert.Contains("COPY --from=build /out/ /opt/packet-agent/", dockerfile);
        Assert.Contains("ln -s /opt/packet-agent/packet-agent /usr/local/bin/packet-agent", dockerfile);
        Assert.Contains("ENTRYPOINT [\"/usr/bin/tini\", \"--\", \"packet-agent\", \"boot\", \"--\"]", dockerfile);
        Assert.Matches(@"(?m)^CMD \[", dockerfile);
        Assert.Contains("org.opencontainers.image.version", dockerfile);
    }

    [Fact]
    public void Every_shell_script_passes_shellcheck()
    {
        var scripts = new[] { "scripts", "container", ".ci" }
            .SelectMany(folder => Directory.GetFiles(Repo(folder), "*", SearchOption.AllDirectories))
            .Where(file => !file.Contains("node_modules", StringComparison.Ordinal) && ShellShebang().IsMatch(FirstLine(file)))
            .ToArray();
        Assert.True(scripts.Length >= 8, $"only {scripts.Length} scripts found");

        // --external-sources: a hook that sources a helper beside it is checked with the helper's functions.
        var result = ChildProcess.Run("shellcheck", ["--severity=style", "--external-sources", .. scripts]);

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public void The_published_binary_needs_no_glibc_newer_than_2_31()
    {
        var result = ChildProcess.Run("objdump", ["-T", RepositoryPaths.AgentBinary]);
        Assert.Equal(0, result.ExitCode);

        var versions = GlibcVersion().Matches(result.StandardOutput).Select(m => Version.Parse(m.Groups[1].Value)).Distinct().ToArray();

        Assert.NotEmpty(versions);
        Assert.True(versions.Max() <= new Version(2, 31), $"needs GLIBC_{versions.Max()}");
    }

    [RootFact]
    public void The_published_binary_boots_inside_a_Debian_bullseye_root_file_system()
    {
        Require.Root();
        string sysroot = Repo("artifacts/sysroot-bullseye");
        Assert.True(File.Exists(Path.Join(sysroot, ".complete")), "scripts/build.sh makes the bullseye sysroot; run it first");
        string install = Path.Join(sysroot, "opt", $"packet-agent-test-{Environment.ProcessId}");
        Directory.CreateDirectory(install);
        try
        {
            File.Copy(RepositoryPaths.AgentBinary, Path.Join(install, "packet-agent"));
            File.Copy(Path.Join(Path.GetDirectoryName(RepositoryPaths.AgentBinary)!, "libMonoPosixHelper.so"), Path.Join(install, "libMonoPosixHelper.so"));
            Directory.CreateDirectory(Path.Join(install, "workspace"));
            HomeFixture.Write(install, "home/.bashrc", "# bullseye\n");
            string inside = install[sysroot.Length..];

            // KUBERNETES_SERVICE_HOST: a pod's mark, so the agent links the home as it would in one.
            var result = ChildProcess.Run(
                "chroot",
                [sysroot, $"{inside}/packet-agent", "boot", "--workspace", $"{inside}/workspace", "--home", $"{inside}/home", "--gpu", "off", "--", "/bin/sh", "-c", "ldd --version | head -1"],
                new Dictionary<string, string?> { ["KUBERNETES_SERVICE_HOST"] = "10.96.0.1" });

            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("2.31", result.StandardOutput);
            Assert.True(File.Exists(Path.Join(install, "workspace/home/.packet-init")), result.ToString());
            Assert.Equal(Path.Join(inside, "workspace/home"), new DirectoryInfo(Path.Join(install, "home")).LinkTarget);
        }
        finally
        {
            Directory.Delete(install, recursive: true);
        }
    }

    private static string FirstLine(string file)
    {
        using var reader = new StreamReader(file);
        return reader.ReadLine() ?? string.Empty;
    }

    /// <summary>A script's first line: a shell's shebang, or, in a file only sourced, shellcheck's own shell directive.</summary>
    [GeneratedRegex(@"^(#!.*\b(ba)?sh\b|# shellcheck shell=(ba)?sh$)")]
    private static partial Regex ShellShebang();

    [GeneratedRegex(@"GLIBC_(\d+\.\d+(\.\d+)?)")]
    private static partial Regex GlibcVersion();
}
