using MoeSharp.Checkpoints;

namespace MoeSharp.Tests.Checkpoints;

/// <summary>
/// Small text files (config.json, a safetensors index) are read up to a bound: a device or a huge file in their place
/// is refused instead of read until memory runs out.
/// </summary>
public sealed class BoundedFileTests
{
    [Fact]
    public void A_config_json_that_is_dev_zero_is_refused_naming_it()
    {
        string folder = Directory.CreateTempSubdirectory("moe-config-zero-").FullName;
        try
        {
            string config = Path.Combine(folder, "config.json");
            File.CreateSymbolicLink(config, "/dev/zero");
            long before = GC.GetAllocatedBytesForCurrentThread();
            var error = Assert.Throws<InvalidDataException>(() => HfMoeConfig.Read(folder));
            Assert.StartsWith($"{config}: more than 16777216 bytes", error.Message, StringComparison.Ordinal);
            // The bound and a copy of it, not the device's endless bytes.
            Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 80L << 20);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_file_within_the_bound_is_read_whole_and_one_past_it_is_refused()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "\uFEFF{\"a\": 1}");
            Assert.Equal("{\"a\": 1}", BoundedFile.ReadAllText(path, 100, "a test file"));
            Assert.Equal(11, BoundedFile.ReadAllBytes(path, 11, "a test file").Length); // the byte-order mark's 3 too
            var error = Assert.Throws<InvalidDataException>(() => BoundedFile.ReadAllBytes(path, 10, "a test file"));
            Assert.Contains("more than 10 bytes, more than a test file can plausibly hold", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
