using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The workspace's directory handle on a real file system: what it opens, makes, reads and replaces, and what it refuses.</summary>
public sealed class DirectoryHandleTests : IDisposable
{
    private const FilePermissions Private = FilePermissions.S_IRWXU;
    private const FilePermissions ReadWrite = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR;

    private readonly TempDirectory _dir = new("directory-handle");

    public DirectoryHandleTests()
    {
        Root = _dir.Create("root");
    }

    private string Root { get; }

    public void Dispose() => _dir.Dispose();

    private DirectoryHandle Open(IPosix? posix = null) => DirectoryHandle.Open(posix ?? new FaultyPosix(), Root);

    private static FilePermissions ModeOf(string path)
    {
        HomeFixture.Check(Syscall.lstat(path, out var stat));
        return stat.st_mode & FilePermissions.ALLPERMS;
    }

    [Fact]
    public void A_disposed_handle_closes_its_descriptor_once_and_refuses_further_use()
    {
        var handle = Open();
        Assert.Single(OpenDescriptors.Under(Root));

        handle.Dispose();
        handle.Dispose();

        Assert.Empty(OpenDescriptors.Under(Root));
        Assert.Equal(Root, Assert.Throws<ObjectDisposedException>(() => handle.Fd).ObjectName);
    }

    [Fact]
    public void Opening_a_missing_directory_names_it()
    {
        var failure = Assert.Throws<PosixException>(() => DirectoryHandle.Open(new FaultyPosix(), _dir["missing"]));

        Assert.Contains(_dir["missing"], failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_entry_exists_when_it_is_there_even_as_a_dangling_link_or_when_it_cannot_be_looked_at()
    {
        HomeFixture.Write(Root, "file", "x");
        HomeFixture.Symlink(Root, "/nonexistent", "dangling");
        using var handle = Open();
        using var refusing = Open(new FaultyPosix((call, name) => call == "lstatat" && name == "hidden" ? Errno.EACCES : null));

        Assert.True(handle.Exists("file"));
        Assert.True(handle.Exists("dangling"));
        Assert.False(handle.Exists("missing"));
        Assert.True(refusing.Exists("hidden"), "an entry that cannot be looked at must not be taken for absent");
    }

    [Fact]
    public void A_subdirectory_is_opened_without_following_a_link_and_a_file_or_a_refusal_is_named()
    {
        Directory.CreateDirectory(Path.Join(Root, "dir"));
        HomeFixture.Write(Root, "file", "x");
        HomeFixture.Symlink(Root, "dir", "link");
        using var handle = Open();
        using var refusing = Open(new FaultyPosix((call, name) => call == "openat" && name == "dir" ? Errno.EACCES : null));

        using (var dir = handle.TryOpenDirectory("dir"))
        {
            Assert.Equal(Path.Join(Root, "dir"), dir!.Path);
        }

        Assert.Null(handle.TryOpenDirectory("missing"));
        var link = Assert.Throws<UnsafeWorkspaceException>(() => handle.TryOpenDirectory("link")).Message;
        Assert.Contains(Path.Join(Root, "link"), link, StringComparison.Ordinal);
        Assert.EndsWith("it is a symlink, and the agent never follows a symlink inside the workspace", link, StringComparison.Ordinal);
        Assert.EndsWith("it is not a directory", Assert.Throws<UnsafeWorkspaceException>(() => handle.TryOpenDirectory("file")).Message, StringComparison.Ordinal);
        var refused = Assert.Throws<PosixException>(() => refusing.TryOpenDirectory("dir"));
        Assert.Contains("Permission denied", refused.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Join(Root, "dir"), refused.Message, StringComparison.Ordinal);
        Assert.Throws<PosixException>(() => handle.OpenDirectory("missing"));
    }

    [Fact]
    public void A_new_directory_gets_exactly_its_mode_whatever_the_umask_and_an_existing_one_keeps_its_own()
    {
        Directory.CreateDirectory(Path.Join(Root, "existing"));
        HomeFixture.Chmod(Root, "existing", "751");
        using var handle = Open();

        using (handle.CreateDirectory("new", FilePermissions.ACCESSPERMS))
        {
        }

        using (handle.CreateDirectory("existing", Private))
        {
        }

        Assert.Equal(FilePermissions.ACCESSPERMS, ModeOf(Path.Join(Root, "new")));
        Assert.Equal((FilePermissions)Convert.ToUInt32("751", 8), ModeOf(Path.Join(Root, "existing")));
    }

    [RootFact]
    public void A_new_directory_is_given_its_owner_and_an_existing_one_is_not()
    {
        Require.Root();
        Directory.CreateDirectory(Path.Join(Root, "existing"));
        using var handle = Open();

        handle.CreateDirectory("new", Private, (Platform.StrangerUid, Platform.StrangerGid)).Dispose();
        handle.CreateDirectory("existing", Private, (Platform.StrangerUid, Platform.StrangerGid)).Dispose();
        handle.CreateDirectory("mine", Private, (0, Platform.StrangerGid)).Dispose();

        Syscall.lstat(Path.Join(Root, "new"), out var made);
        Syscall.lstat(Path.Join(Root, "existing"), out var kept);
        Syscall.lstat(Path.Join(Root, "mine"), out var group);
        Assert.Equal((Platform.StrangerUid, Platform.StrangerGid), (made.st_uid, made.st_gid));
        Assert.Equal((0u, 0u), (kept.st_uid, kept.st_gid));
        Assert.Equal((0u, Platform.StrangerGid), (group.st_uid, group.st_gid));
    }

    [Fact]
    public void A_volume_that_refuses_modes_still_gets_its_directories_and_any_other_failure_is_an_error()
    {
        using var refusing = Open(new FaultyPosix((call, _) => call == "fchmod" ? Errno.EPERM : null));
        using var failing = Open(new FaultyPosix((call, _) => call == "fchmod" ? Errno.EIO : null));
        using var full = Open(new FaultyPosix((call, _) => call == "mkdirat" ? Errno.ENOSPC : null));

        refusing.CreateDirectory("fat", Private).Dispose();
        var failure = Assert.Throws<PosixException>(() => failing.CreateDirectory("broken", Private));
        var noSpace = Assert.Throws<PosixException>(() => full.CreateDirectory("none", Private));

        Assert.True(Directory.Exists(Path.Join(Root, "fat")));
        Assert.Contains($"set the mode of {Path.Join(Root, "broken")}", failure.Message, StringComparison.Ordinal);
        Assert.Contains($"create directory {Path.Join(Root, "none")}", noSpace.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_is_read_whole_and_a_missing_one_is_null()
    {
        HomeFixture.Write(Root, "notes", "twelve bytes");
        HomeFixture.Write(Root, "empty", string.Empty);
        using var handle = Open();

        Assert.Equal("twelve bytes"u8.ToArray(), handle.ReadFile("notes", 12, out var stat));
        Assert.Equal(12, stat.st_size);
        Assert.Empty(handle.ReadFile("empty", 12, out _)!);
        Assert.Null(handle.ReadFile("missing", 12, out var none));
        Assert.Equal(0, none.st_size);
        Assert.Empty(OpenDescriptors.Under(Path.Join(Root, "notes")));
    }

    [Fact]
    public void A_file_over_the_limit_or_not_a_regular_file_is_refused_without_waiting_on_it()
    {
        HomeFixture.Write(Root, "big", "thirteen byte");
        HomeFixture.Check(Syscall.mkfifo(Path.Join(Root, "fifo"), ReadWrite));
        Directory.CreateDirectory(Path.Join(Root, "dir"));
        using var handle = Open();

        Assert.EndsWith("it is larger than 12 bytes", Assert.Throws<UnsafeWorkspaceException>(() => handle.ReadFile("big", 12, out _)).Message, StringComparison.Ordinal);
        Assert.EndsWith("it is not a regular file", Assert.Throws<UnsafeWorkspaceException>(() => handle.ReadFile("fifo", 12, out _)).Message, StringComparison.Ordinal);
        Assert.EndsWith("it is not a regular file", Assert.Throws<UnsafeWorkspaceException>(() => handle.ReadFile("dir", 12, out _)).Message, StringComparison.Ordinal);
        Assert.Empty(OpenDescriptors.Under(Root + "/big"));
        Assert.Empty(OpenDescriptors.Under(Root + "/fifo"));
    }

    [Fact]
    public void A_file_that_shrinks_while_it_is_read_gives_what_was_there()
    {
        HomeFixture.Write(Root, "shrinking", "0123456789");
        using var handle = Open(new FaultyPosix { ReadsEndAt = 4 });

        Assert.Equal("0123"u8.ToArray(), handle.ReadFile("shrinking", 100, out _));
    }

    [Fact]
    public void A_created_file_is_a_new_one_never_written_through_a_link_a_hard_link_or_a_fifo()
    {
        HomeFixture.Write(Root, "log", "old content");
        HomeFixture.Write(_dir.Path, "outside", "keep");
        HomeFixture.Symlink(Root, Path.Join(_dir.Path, "outside"), "link");
        Assert.Equal(0, Syscall.link(_dir["outside"], Path.Join(Root, "hard")));
        Assert.Equal(0, Syscall.mkfifo(Path.Join(Root, "fifo"), FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
        using var handle = Open();

        foreach (string name in new[] { "log", "link", "hard", "fifo" })
        {
            int fd = handle.CreateFile(name, ReadWrite);
            using (var written = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.Write))
            {
                written.Write("ok"u8);
            }

            Assert.Equal("ok", File.ReadAllText(Path.Join(Root, name)));
            Assert.Equal(1UL, (ulong)new Mono.Unix.UnixFileInfo(Path.Join(Root, name)).LinkCount);
        }

        Assert.Equal("keep", File.ReadAllText(_dir["outside"]));
    }

    [Fact]
    public void A_temporary_file_left_by_this_same_pid_is_cleared_and_the_replacement_goes_ahead()
    {
        string leftover = $".marker.packet-tmp-{Environment.ProcessId}";
        HomeFixture.Write(Root, leftover, "half written by a killed run");
        using var handle = Open();

        handle.ReplaceFile("marker", "{}"u8, Syscall.geteuid(), Syscall.getegid(), ReadWrite);

        Assert.Equal(["marker"], Directory.GetFileSystemEntries(Root).Select(Path.GetFileName));
        Assert.Equal("{}", File.ReadAllText(Path.Join(Root, "marker")));
        Assert.Equal(ReadWrite, ModeOf(Path.Join(Root, "marker")));
    }

    [Fact]
    public void A_replacement_that_fails_leaves_the_old_file_and_no_temporary()
    {
        HomeFixture.Write(Root, "marker", "old");
        using var handle = Open(new FaultyPosix((call, _) => call == "write" ? Errno.ENOSPC : null));

        var failure = Assert.Throws<PosixException>(() => handle.ReplaceFile("marker", "new"u8, Syscall.geteuid(), Syscall.getegid(), ReadWrite));

        Assert.Contains("No space left on device", failure.Message, StringComparison.Ordinal);
        Assert.Equal(["marker"], Directory.GetFileSystemEntries(Root).Select(Path.GetFileName));
        Assert.Equal("old", File.ReadAllText(Path.Join(Root, "marker")));
        Assert.Equal([Root], OpenDescriptors.Under(Root));
    }

    [Fact]
    public void A_rename_that_fails_leaves_the_old_file_and_no_temporary()
    {
        HomeFixture.Write(Root, "marker", "old");
        using var handle = Open(new FaultyPosix((call, name) => call == "renameat" && name == "marker" ? Errno.EIO : null));

        var failure = Assert.Throws<PosixException>(() => handle.ReplaceFile("marker", "new"u8, Syscall.geteuid(), Syscall.getegid(), ReadWrite));

        Assert.Contains($"rename into place {Path.Join(Root, "marker")}", failure.Message, StringComparison.Ordinal);
        Assert.Equal(["marker"], Directory.GetFileSystemEntries(Root).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData(true, 2)]
    [InlineData(false, 0)]
    public void A_durable_replacement_fsyncs_the_file_and_its_directory_and_a_quick_one_neither(bool durable, int fsyncs)
    {
        var posix = new FaultyPosix();
        using var handle = Open(posix);

        handle.ReplaceFile("report", "{}"u8, Syscall.geteuid(), Syscall.getegid(), ReadWrite, durable);

        Assert.Equal(fsyncs, posix.FSyncCalls);
    }

    [Fact]
    public void A_durable_replacement_whose_fsync_fails_is_not_put_in_place()
    {
        HomeFixture.Write(Root, "marker", "old");
        using var handle = Open(new FaultyPosix((call, _) => call == "fsync" ? Errno.EIO : null));

        Assert.Throws<PosixException>(() => handle.ReplaceFile("marker", "new"u8, Syscall.geteuid(), Syscall.getegid(), ReadWrite));

        Assert.Equal("old", File.ReadAllText(Path.Join(Root, "marker")));
    }

    [Fact]
    public void A_file_for_the_agents_own_user_is_not_chowned()
    {
        using var handle = Open(new FaultyPosix((call, _) => call == "fchown" ? Errno.EIO : null));

        handle.ReplaceFile("mine", "x"u8, Syscall.geteuid(), Syscall.getegid(), ReadWrite);

        Assert.True(File.Exists(Path.Join(Root, "mine")));
    }

    [RootFact]
    public void A_file_for_another_user_or_group_is_chowned_to_them()
    {
        Require.Root();
        using var handle = Open();

        handle.ReplaceFile("theirs", "x"u8, Platform.StrangerUid, 0, ReadWrite);
        handle.ReplaceFile("group", "x"u8, 0, Platform.StrangerGid, ReadWrite);

        Syscall.lstat(Path.Join(Root, "theirs"), out var theirs);
        Syscall.lstat(Path.Join(Root, "group"), out var group);
        Assert.Equal((Platform.StrangerUid, 0u), (theirs.st_uid, theirs.st_gid));
        Assert.Equal((0u, Platform.StrangerGid), (group.st_uid, group.st_gid));
    }

    [Fact]
    public void Only_a_durable_replacement_clears_what_dead_agents_left()
    {
        int dead = Enumerable.Range(400_000, 1000).First(pid => !Directory.Exists($"/proc/{pid}"));
        HomeFixture.Write(Root, $".report.packet-tmp-{dead}", "left by a dead agent");
        using var handle = Open();

        handle.ReplaceFile("report", "{}"u8, Syscall.geteuid(), Syscall.getegid(), ReadWrite, durable: false);
        Assert.True(File.Exists(Path.Join(Root, $".report.packet-tmp-{dead}")));

        handle.ReplaceFile("report", "{}"u8, Syscall.geteuid(), Syscall.getegid(), ReadWrite, durable: true);
        Assert.False(File.Exists(Path.Join(Root, $".report.packet-tmp-{dead}")));
    }

    [Fact]
    public void A_second_descriptor_of_a_directory_is_named_as_the_directory_itself()
    {
        using var handle = Open();
        using var again = handle.OpenDirectory(".");

        Assert.Equal(Root, again.Path);
        Assert.Equal(Path.Join(Root, "x"), again.PathOf("x"));
    }
}
