using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// The Full Dev Environment (container/examples/full-dev) for real, as CI can afford it:
/// scripts/full-dev.sh --fast builds the example image on podman with the agent under test, boots
/// it twice on one volume, and headless Chromium logs in to the image's Jupyter Notebook. Its
/// code-server registry is a closed port, so code-server's install fails at once with one warning;
/// the full run (code-server installed from the npm registry, minutes) is the script alone.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class FullDevTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private readonly TempDirectory _dir = new("full-dev");

    public void Dispose() => _dir.Dispose();

    [RootFact]
    public void Jupyter_comes_up_on_both_boots_and_Chromium_logs_in_to_the_persisted_home()
    {
        var result = ChildProcess.Run(Path.Join(RepositoryPaths.Root, "scripts/full-dev.sh"), ["--fast"],
            new Dictionary<string, string?> { ["PACKET_AGENT_BIN"] = RepositoryPaths.AgentBinary, ["FULL_DEV_OUT"] = _dir.Path },
            TimeSpan.FromMinutes(4.5));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("full-dev: passed: fast variant", result.StandardOutput, StringComparison.Ordinal);
        string second = File.ReadAllText(_dir["second.log"]);
        Assert.DoesNotContain("first-boot.d/10-install-jupyterlab", second, StringComparison.Ordinal);
        Assert.Contains("boot.d/60-start-jupyter: the image's Jupyter Notebook (/usr/bin/jupyter-notebook) starting on 0.0.0.0:8888", second, StringComparison.Ordinal);
        byte[] screenshot = File.ReadAllBytes(_dir["jupyter.png"]);
        Assert.True(screenshot.Length > 10_000 && screenshot.AsSpan(0, 8).SequenceEqual(PngSignature),
            $"jupyter.png is {screenshot.Length} bytes, not a page's screenshot");
    }
}
