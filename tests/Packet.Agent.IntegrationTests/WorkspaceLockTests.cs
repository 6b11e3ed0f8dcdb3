using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The workspace lock's file, its holder's note, its reports while waiting, and what it leaves open.</summary>
public sealed class WorkspaceLockTests : IDisposable
{
    private readonly TempDirectory _dir = new("workspace-lock");

    public WorkspaceLockTests()
    {
        State = _dir.Create("state");
    }

    private string State { get; }

    private string LockFile => Path.Join(State, "lock");

    public void Dispose() => _dir.Dispose();

    // Not File.*: .NET takes an flock of its own on open, which the held lock refuses.
    private static void Write(string path, string text)
    {
        int fd = Syscall.open(path, OpenFlags.O_WRONLY | OpenFlags.O_TRUNC | OpenFlags.O_CLOEXEC);
        HomeFixture.Check(fd);
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(text);
        Assert.Equal(bytes.Length, new FaultyPosix().Write(fd, bytes));
        Syscall.close(fd);
    }

    private static string Read(string path) => ChildProcess.Run("cat", [path]).StandardOutput;

    private readonly SteppingClock _clock = new();

    private WorkspaceLock? Acquire(DirectoryHandle state, TimeSpan timeout, IPosix? posix = null, List<(string Holder, TimeSpan Waited)>? heard = null, TimeSpan? reportEvery = null) =>
        WorkspaceLock.Acquire(posix ?? new FaultyPosix(), state, _clock, timeout, reportEvery ?? TimeSpan.FromSeconds(10), (holder, waited) => heard?.Add((holder, waited)), CancellationToken.None);

    [Fact]
    public void The_holder_writes_who_it_is_over_what_an_earlier_holder_wrote_in_a_file_all_can_read()
    {
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);

        using (var held = Acquire(state, TimeSpan.Zero))
        {
            Assert.NotNull(held);
        }

        Assert.Equal($"pid {Environment.ProcessId} on {Environment.MachineName} since 2026-12-05T09:00:00Z\n", File.ReadAllText(LockFile));
        HomeFixture.Check(Syscall.lstat(LockFile, out var stat));
        Assert.Equal(FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH, stat.st_mode & FilePermissions.ALLPERMS);

        File.WriteAllText(LockFile, new string('x', 200));
        using (Acquire(state, TimeSpan.Zero))
        {
        }

        Assert.DoesNotContain("x", File.ReadAllText(LockFile), StringComparison.Ordinal);
    }

    [Fact]
    public void A_waiter_hears_who_holds_the_lock_at_once_and_then_at_each_interval()
    {
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);
        using var first = Acquire(state, TimeSpan.Zero);
        var heard = new List<(string Holder, TimeSpan Waited)>();

        var second = Acquire(state, TimeSpan.FromMilliseconds(1100), heard: heard, reportEvery: TimeSpan.FromMilliseconds(500));

        Assert.Null(second);
        Assert.Equal([TimeSpan.Zero, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1)], heard.Select(h => h.Waited));
        Assert.All(heard, h => Assert.StartsWith($"pid {Environment.ProcessId} on ", h.Holder, StringComparison.Ordinal));
        Assert.Equal(TimeSpan.FromMilliseconds(1100), _clock.GetElapsedTime(0)); // polled every 100 ms until the timeout
        Assert.Equal([State, LockFile], OpenDescriptors.Under(State).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_holder_that_wrote_nothing_is_another_agent()
    {
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);
        using var first = Acquire(state, TimeSpan.Zero);
        Write(LockFile, "  \n");
        var heard = new List<(string Holder, TimeSpan Waited)>();

        Acquire(state, TimeSpan.Zero, heard: heard);

        Assert.Equal("another agent", Assert.Single(heard).Holder);
    }

    [Fact]
    public void A_lock_released_is_free_at_once_and_releasing_twice_is_harmless()
    {
        var posix = new FaultyPosix();
        using var state = DirectoryHandle.Open(posix, State);
        var first = Acquire(state, TimeSpan.Zero, posix)!;

        first.Dispose();
        int unlocks = posix.CallsOf("flock");
        first.Dispose();

        Assert.Equal(unlocks, posix.CallsOf("flock")); // the second release touches no descriptor (it once could have been any number)

        using var second = Acquire(state, TimeSpan.Zero);
        Assert.NotNull(second);
        Assert.Equal([State, LockFile], OpenDescriptors.Under(State).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_stop_while_waiting_ends_the_wait_and_leaves_nothing_open()
    {
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);
        using var first = Acquire(state, TimeSpan.Zero);
        using var stop = new CancellationTokenSource();
        stop.Cancel();

        Assert.Throws<OperationCanceledException>(() => WorkspaceLock.Acquire(new FaultyPosix(), state, _clock, TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(10), (_, _) => { }, stop.Token));

        Assert.Equal([State, LockFile], OpenDescriptors.Under(State).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_lock_file_the_agent_may_only_read_still_locks_and_records_no_holder()
    {
        File.WriteAllText(LockFile, "pid 1 on the root init container\n");
        int opens = 0;
        var posix = new FaultyPosix((call, name) => call == "openat" && name == "lock" && Interlocked.Increment(ref opens) == 1 ? Errno.EACCES : null);
        using var state = DirectoryHandle.Open(posix, State);

        using var held = Acquire(state, TimeSpan.Zero, posix);

        Assert.NotNull(held);
        Assert.Equal(2, opens);
        Assert.Equal("pid 1 on the root init container\n", Read(LockFile));
    }

    [Fact]
    public void A_lock_with_another_name_is_locked_but_nothing_is_written_through_it()
    {
        string elsewhere = _dir["elsewhere"];
        File.WriteAllText(elsewhere, "another file of the volume\n");
        HomeFixture.Check(Syscall.link(elsewhere, LockFile));
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);

        using var held = Acquire(state, TimeSpan.Zero);

        Assert.NotNull(held);
        Assert.Equal("another file of the volume\n", Read(elsewhere));
    }

    [Fact]
    public void A_lock_that_is_a_fifo_a_folder_or_a_link_is_refused_at_once_and_nothing_stays_open()
    {
        HomeFixture.Check(Syscall.mkfifo(LockFile, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);

        var fifo = Assert.Throws<UnsafeWorkspaceException>(() => Acquire(state, TimeSpan.FromMinutes(10)));
        File.Delete(LockFile);
        Directory.CreateDirectory(LockFile);
        var folder = Assert.Throws<UnsafeWorkspaceException>(() => Acquire(state, TimeSpan.FromMinutes(10)));
        Directory.Delete(LockFile);
        HomeFixture.Symlink(State, _dir["elsewhere"], "lock");
        var link = Assert.Throws<UnsafeWorkspaceException>(() => Acquire(state, TimeSpan.FromMinutes(10)));

        Assert.Equal($"refusing {LockFile}: it is not a regular file", fifo.Message);
        Assert.Equal($"refusing {LockFile}: it is not a regular file", folder.Message);
        Assert.Equal($"refusing {LockFile}: it is a symlink, and the agent never follows a symlink inside the workspace", link.Message);
        Assert.Equal([State], OpenDescriptors.Under(State));
    }

    [Fact]
    public void What_a_holder_wrote_is_shown_without_its_control_characters()
    {
        File.WriteAllText(LockFile, "pid 7\u001b]0;owned\u0007 on pod\n");
        using var state = DirectoryHandle.Open(new FaultyPosix(), State);
        int fd = Syscall.open(LockFile, OpenFlags.O_RDONLY | OpenFlags.O_CLOEXEC);

        string holder = WorkspaceLock.ReadHolder(new FaultyPosix(), fd);
        Syscall.close(fd);

        Assert.Equal("pid 7?]0;owned? on pod", holder);
    }

    [Fact]
    public void A_lock_that_cannot_be_opened_or_taken_is_an_error_naming_it_and_nothing_stays_open()
    {
        using var unopenable = DirectoryHandle.Open(new FaultyPosix((call, name) => call == "openat" && name == "lock" ? Errno.EROFS : null), State);
        using var unlockable = DirectoryHandle.Open(new FaultyPosix((call, _) => call == "flock" ? Errno.ENOLCK : null), State);

        var notOpened = Assert.Throws<PosixException>(() => Acquire(unopenable, TimeSpan.Zero, new FaultyPosix((call, name) => call == "openat" && name == "lock" ? Errno.EROFS : null)));
        var notTaken = Assert.Throws<PosixException>(() => Acquire(unlockable, TimeSpan.Zero, new FaultyPosix((call, _) => call == "flock" ? Errno.ENOLCK : null)));

        Assert.Contains($"open the lock {LockFile}", notOpened.Message, StringComparison.Ordinal);
        Assert.Contains($"lock {LockFile}", notTaken.Message, StringComparison.Ordinal);
        Assert.Contains("ENOLCK", notTaken.Message, StringComparison.Ordinal);
        Assert.Equal([State, State], OpenDescriptors.Under(State));
    }
}
