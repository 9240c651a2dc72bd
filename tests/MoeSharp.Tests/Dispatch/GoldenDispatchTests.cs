using MoeSharp.Tensors;
using MoeSharp.Testing;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// Every dispatch-kind golden file (found by listing the folder, so new files are picked up) replays bitwise,
/// and so do files the project has never seen, written here from an independent implementation of §1.
/// </summary>
public class GoldenDispatchTests
{
    /// <summary>File names of the golden files whose metadata has no <c>kind</c> (the dispatch kind).</summary>
    public static TheoryData<string> DispatchFiles()
    {
        var data = new TheoryData<string>();
        foreach (string path in GoldenFiles.SafetensorsFiles())
        {
            if (!SafetensorsFile.Read(path).Metadata.ContainsKey("kind"))
                data.Add(Path.GetFileName(path));
        }
        return data;
    }

    [Fact]
    public void TheGoldenFolderHasDispatchFiles()
    {
        Assert.NotEmpty(DispatchFiles());
    }

    [Theory]
    [MemberData(nameof(DispatchFiles))]
    public void GoldenFile_ReplaysBitwise_WithBalancedAndShardedVariants(string fileName)
    {
        SafetensorsContent file = SafetensorsFile.Read(GoldenFiles.PathOf(fileName));
        Assert.True(GoldenDispatchReplay.Applies(file));
        Assert.Null(GoldenDispatchReplay.Replay(file, TimeSpan.FromSeconds(30)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void UnseenFile_FromAnIndependentImplementation_ReplaysBitwise(int seed)
    {
        string dir = Directory.CreateTempSubdirectory("moesharp-golden-").FullName;
        try
        {
            string path = Path.Combine(dir, $"unseen_{seed}.safetensors");
            NaiveGolden.WriteRandom(path, seed);
            SafetensorsContent file = SafetensorsFile.Read(path);
            Assert.True(GoldenDispatchReplay.Applies(file));
            Assert.Null(GoldenDispatchReplay.Replay(file, TimeSpan.FromSeconds(30)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void NaiveDefinition_AgreesWithEveryCheckedInFinal()
    {
        // Guards the independent float32 definition itself: from each file's inputs it gives the file's final bits.
        foreach (string name in DispatchFiles())
        {
            SafetensorsContent file = SafetensorsFile.Read(GoldenFiles.PathOf(name));
            DispatchCase problem = GoldenDispatchReplay.ReadCase(file);
            for (int g = 0; g < problem.GroupCount; g++)
            {
                Tensor naive = NaiveDispatch.Final32(
                    problem.Groups[g],
                    problem.Config.ScoreBeforeExperts,
                    NaiveDispatch.Scaled
                );
                Assert.Null(DispatchHarness.BitwiseMismatch($"{name} final.g{g}", file.Get($"final.g{g}"), naive));
            }
        }
    }
}
