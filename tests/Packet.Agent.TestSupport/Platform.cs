using Mono.Unix.Native;
using Xunit;

namespace Packet.Agent.TestSupport;

/// <summary>What the machine running the tests can do, and what CI insists on.</summary>
public static class Platform
{
    /// <summary>Set by .ci/run (which runs as root): a test that needs root must then run, never skip.</summary>
    public const string RequireRootVariable = "PACKET_TEST_REQUIRE_ROOT";

    public static bool IsRoot => Syscall.geteuid() == 0;

    public static bool RootRequired => Environment.GetEnvironmentVariable(RequireRootVariable) == "1";

    /// <summary>An unprivileged user for setpriv runs: nobody.</summary>
    public const uint Nobody = 65534;

    /// <summary>A uid and gid with no passwd or group entry.</summary>
    public const uint StrangerUid = 4242;

    public const uint StrangerGid = 4343;
}

/// <summary>
/// A fact that needs root (chown, mknod, setpriv). Elsewhere it is skipped with the reason; where
/// PACKET_TEST_REQUIRE_ROOT=1 (CI) it always runs, so a CI that lost root fails instead of skipping.
/// </summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (!Platform.IsRoot && !Platform.RootRequired)
        {
            Skip = "needs root (chown, mknod, setpriv); CI runs it as root with PACKET_TEST_REQUIRE_ROOT=1";
        }
    }
}

public sealed class RootTheoryAttribute : TheoryAttribute
{
    public RootTheoryAttribute()
    {
        if (!Platform.IsRoot && !Platform.RootRequired)
        {
            Skip = "needs root (chown, mknod, setpriv); CI runs it as root with PACKET_TEST_REQUIRE_ROOT=1";
        }
    }
}

public static class Require
{
    /// <summary>First line of a root test: fails (not skips) when root is missing, so a lost privilege cannot pass silently.</summary>
    public static void Root() => Assert.True(Platform.IsRoot, "this test needs root; it runs only where PACKET_TEST_REQUIRE_ROOT=1 says root is there, and it is not");
}
