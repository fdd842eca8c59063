// Hostnames: the one normalization and DNS-name rule every hostname function
// applies before it touches the catalog.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "env_fixture.hpp"
#include "tenancy/hostnames.hpp"

using namespace envdb;
using envdb::test::code_of;

TEST(Hostnames, NormalizesCaseAndOneFinalDot) {
  EXPECT_EQ(hostnames::normalize("hostname", "App.Example.COM."), "app.example.com");
  EXPECT_EQ(hostnames::normalize("hostname", "localhost"), "localhost");
  EXPECT_EQ(hostnames::normalize("hostname", "xn--caf-dma.example"), "xn--caf-dma.example");
  EXPECT_EQ(hostnames::normalize("hostname", "a-b.c-d.e"), "a-b.c-d.e");
  const std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                              std::string(63, 'c') + "." + std::string(61, 'd');
  ASSERT_EQ(longest.size(), 253u);
  EXPECT_EQ(hostnames::normalize("hostname", longest), longest);
}

TEST(Hostnames, RefusesWhatIsNotADnsName) {
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "a..b", ".a", "a..", "-a", "a-", "a-.b", "a.-b",
                                "a_b", "a b", "a:80", "https://a", "a/b", "caf\xc3\xa9.example",
                                std::string(64, 'l'),
                                std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                    std::string(63, 'c') + "." + std::string(62, 'd')}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(code_of([&] { hostnames::normalize("hostname", bad); }), Code::invalid_parameter);
  }
  try {
    hostnames::normalize("hostname", "a:80");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hostname 'a:80'"), std::string::npos) << e.what();
  }
}
