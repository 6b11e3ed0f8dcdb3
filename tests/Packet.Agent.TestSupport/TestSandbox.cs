namespace Packet.Agent.TestSupport;

/// <summary>
/// What every program a test starts inherits in place of the machine's own paths: HOME is an
/// empty directory of this test run, the agent's default workspace is a path that does not exist,
/// and its termination message goes to a scratch file. A test that forgets <c>--home</c> or
/// <c>--workspace</c>, or agent code that ignores them, then reaches scratch paths, never the real
/// <c>/root</c>, <c>/workspace</c> or <c>/dev/termination-log</c>. sshd is off unless a test asks for
/// it (inside a private mount namespace): a machine with openssh-server would otherwise get an sshd
/// on port 22 from every boot a test runs.
/// </summary>
/// <remarks>Each test assembly calls <see cref="Enter"/> from its module initializer, before any test runs.</remarks>
public static class TestSandbox
{
    private static readonly Lock Gate = new();
    private static string? _root;

    /// <summary>The variables the sandbox sets, with their values, for helpers that build a child's environment from scratch.</summary>
    public static IReadOnlyDictionary<string, string> Variables { get; private set; } = new Dictionary<string, string>();

    public static void Enter()
    {
        lock (Gate)
        {
            if (_root is not null)
            {
                return;
            }

            _root = Directory.CreateTempSubdirectory("packet-sandbox-").FullName;
            File.SetUnixFileMode(_root, (UnixFileMode)0b111_101_101);
            string home = Directory.CreateDirectory(Path.Join(_root, "home")).FullName;
            Variables = new Dictionary<string, string>
            {
                ["HOME"] = home,
                ["PACKET_WORKSPACE"] = Path.Join(_root, "no-workspace-given"),
                ["PACKET_TERMINATION_LOG"] = Path.Join(_root, "termination-log"),
                ["PACKET_RUNTIME_DIR"] = Path.Join(_root, "run"),
                ["PACKET_SSH"] = "off",
            };
            foreach (var (name, value) in Variables)
            {
                Environment.SetEnvironmentVariable(name, value);
            }

            AppDomain.CurrentDomain.ProcessExit += (_, _) => TempDirectory.Remove(_root);
        }
    }
}
