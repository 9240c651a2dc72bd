using MoeSharp.Fuzz;
using MoeSharp.Tests.Cli;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// Every seed and every input the fuzzers ever crashed on (tests/fuzz/corpus and tests/fuzz/regressions), replayed
/// through the fuzz targets: each must end with a documented error.
/// </summary>
[Collection(ConsoleCollection.Name)]
public class FuzzRegressionTests
{
    public static TheoryData<string, string> Inputs()
    {
        var data = new TheoryData<string, string>();
        string fuzz = Path.Combine(RepositoryRoot(), "tests", "fuzz");
        foreach (string kind in new[] { "corpus", "regressions" })
        {
            string dir = Path.Combine(fuzz, kind);
            if (!Directory.Exists(dir))
                continue;
            foreach (string targetDir in Directory.GetDirectories(dir).Order(StringComparer.Ordinal))
            {
                foreach (string file in Directory.GetFiles(targetDir).Order(StringComparer.Ordinal))
                {
                    data.Add(Path.GetFileName(targetDir), Path.GetRelativePath(fuzz, file));
                }
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Input_EndsWithADocumentedError(string target, string input)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(RepositoryRoot(), "tests", "fuzz", input));
        FuzzTargets.ByName[target](bytes);
    }

    [Fact]
    public void TheCorporaAreThere()
    {
        Assert.True(Inputs().Count() >= 10, "tests/fuzz/corpus was not found from the test binaries");
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MoeSharp.slnx")))
                return dir.FullName;
        }
        throw new DirectoryNotFoundException("no MoeSharp.slnx above the test binaries");
    }
}
