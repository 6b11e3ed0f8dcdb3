using Packet.Agent.Ssh;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The config the agent writes, read back by the real sshd of Debian's openssh-server (<c>sshd -T</c>
/// prints the settings in force for a connection): what the pod gives as values must reach
/// sessions byte for byte and never become a directive. sshd -T wants its privilege separation
/// directory, so it runs in a private mount namespace with its own /run.
/// </summary>
public sealed class SshdConfigTests : IDisposable
{
    private readonly TempDirectory _dir = new("sshd-config");

    public void Dispose() => _dir.Dispose();

    [RootFact]
    public void Sshd_reads_every_value_back_exactly_and_no_value_adds_a_directive()
    {
        Require.Root();
        var environment = new Dictionary<string, string>
        {
            ["PATH"] = "/workspace/bin:/usr/local/cuda/bin:/usr/bin",
            ["QUOTES"] = "x\" PermitRootLogin yes \\\"#",
            ["SHELLISH"] = "it's $(id) `id` ; rm -rf / # \\",
            ["SPACES"] = "a  b\tc ",
            ["EMPTY"] = string.Empty,
            ["UNICODE"] = "héllo ✓",
        };
        var kept = SshdConfig.SessionEnvironment(environment, []);

        var dev = Effective(kept, user: "dev");
        var other = Effective(kept, user: "someone");

        var setEnv = dev.Where(l => l.StartsWith("setenv ", StringComparison.Ordinal)).Select(l => l["setenv ".Length..]).ToList();
        Assert.Equal(kept.Select(v => $"{v.Key}={v.Value}"), setEnv);
        Assert.Contains("permitrootlogin no", dev);
        Assert.Contains("passwordauthentication no", dev);
        Assert.Contains($"authorizedkeysfile .ssh/authorized_keys {_dir["home/.ssh/authorized_keys"]}", dev);
        Assert.Contains("authorizedkeysfile .ssh/authorized_keys", other);
        Assert.Contains("strictmodes yes", dev);
        Assert.Contains("listenaddress [::]:2222", dev);
        Assert.Contains("listenaddress 0.0.0.0:2222", dev);
    }

    [RootFact]
    public void Sshd_listens_on_the_one_address_given_with_the_port()
    {
        Require.Root();

        var loopback = Effective(new Dictionary<string, string>(), user: "dev", listen: "127.0.0.1");
        var ipv6 = Effective(new Dictionary<string, string>(), user: "dev", listen: "::1");

        Assert.Equal(["listenaddress 127.0.0.1:2222"], loopback.Where(l => l.StartsWith("listenaddress ", StringComparison.Ordinal)));
        Assert.Equal(["listenaddress [::1]:2222"], ipv6.Where(l => l.StartsWith("listenaddress ", StringComparison.Ordinal)));
    }

    /// <summary>sshd -T's lines for a connection by <paramref name="user"/> from the loopback address.</summary>
    private List<string> Effective(IReadOnlyDictionary<string, string> sessions, string user, string? listen = null)
    {
        string hostKey = _dir["ssh_host_ed25519_key"];
        if (!File.Exists(hostKey))
        {
            ChildProcess.MustSucceed("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-f", hostKey);
        }

        string config = _dir["sshd_config"];
        File.WriteAllText(config, SshdConfig.Render(new SshdSettings(2222, listen, [hostKey], "dev", _dir["home/.ssh/authorized_keys"], _dir["sshd.pid"], sessions)));
        var result = ChildProcess.Run("unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c",
            $"mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec /usr/sbin/sshd -T -f {ChildProcess.Quote(config)} -C user={user},host=pod,addr=127.0.0.1"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return [.. result.StandardOutput.Split('\n')];
    }
}
